import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// An ESM value import of node:http loads Node's bundled undici (~13 MB RSS) through the module's
// lazy WebSocket getters: shipped code takes its values from lib/client/node-http.ts.
const nodeHttpByRequire = {
  name: 'node:http',
  allowTypeImports: true,
  message: "import { nodeHttp } from lib/client/node-http.ts (types: import type * as http from 'node:http')",
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['lib/**/*.ts', 'controllers/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: [nodeHttpByRequire] }],
    },
  },
  {
    // service-lb-ipam-controller is the proof that the public API is enough: it may import
    // lib/ only through the two entry points `ts-kcm` (lib/index.ts) and `ts-kcm/testing`.
    files: ['controllers/lbipam/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+lib/(?!(index|testing)\\.js$)',
              message:
                'controllers/lbipam uses only the public API: import ../../lib/index.js or ../../lib/testing.js',
            },
            {
              regex: '^ts-kcm/(?!testing$)',
              message: 'only the entry points ts-kcm and ts-kcm/testing are public',
            },
          ],
        },
      ],
    },
  },
);
