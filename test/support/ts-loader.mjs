// Lets jest's globalSetup/globalTeardown import the TypeScript sources under lib/.
//
// Jest transforms the setup file itself but then hands it to Node, whose own ESM loader
// resolves its imports: it neither maps our `.js` specifiers to `.ts` files (jest's
// moduleNameMapper does that only inside test files) nor compiles TypeScript. These
// synchronous module hooks do both, with the same Babel preset that jest uses. Plain JS on
// purpose: this file must load before anything can be compiled.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, registerHooks } from 'node:module';
import { fileURLToPath, URL } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../../', import.meta.url));
let registered = false;

function ours(url) {
  if (!url.startsWith('file:')) return false;
  const path = fileURLToPath(url);
  return path.startsWith(root) && !path.includes('/node_modules/');
}

export function registerTypeScriptHooks() {
  if (registered) return;
  registered = true;
  const babel = require('@babel/core');
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (
        specifier.startsWith('.') &&
        specifier.endsWith('.js') &&
        context.parentURL &&
        ours(context.parentURL)
      ) {
        const js = new URL(specifier, context.parentURL);
        const ts = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
        if (!existsSync(js) && existsSync(ts)) return { url: ts.href, format: 'module', shortCircuit: true };
      }
      return nextResolve(specifier, context);
    },
    load(url, context, nextLoad) {
      if (url.endsWith('.ts') && ours(url)) {
        const filename = fileURLToPath(url);
        const source = readFileSync(filename, 'utf8');
        // Same options as jest.config.js: strip types only, keep ESM.
        const out = babel.transformSync(source, {
          filename,
          babelrc: false,
          configFile: false,
          presets: [[require.resolve('@babel/preset-typescript'), { onlyRemoveTypeImports: true }]],
          sourceMaps: 'inline',
        });
        return { format: 'module', source: out.code, shortCircuit: true };
      }
      return nextLoad(url, context);
    },
  });
}
