/**
 * `ts-kcm new controller NAME [--dir DIR] [--group G --version V --kind K]`: writes a ready
 * project (templates in scaffold/). Every check runs before the first file is written, so a
 * bad input leaves nothing behind.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadAll } from 'js-yaml';
import { Command } from 'commander';
import { projectRoot } from '../controlplane/binaries.js';
import { EXIT_USAGE, ExitError } from './exit.js';
import { generateCRDTypes, type CRD } from './gen.js';
import { scaffoldFiles, validateScaffold, type ScaffoldOptions } from './scaffold/index.js';

export interface NewControllerFlags {
  dir?: string;
  group?: string;
  version?: string;
  kind?: string;
  /** ts-kcm's dependency specifier; default `^<this version>`. */
  tsKcm?: string;
}

function ownVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Writes the project; returns its directory. Throws ExitError(2) on bad input, writing nothing. */
export async function newController(
  name: string,
  flags: NewControllerFlags,
  cwd = process.cwd(),
): Promise<string> {
  const problem = validateScaffold({ name, group: flags.group, version: flags.version, kind: flags.kind });
  if (problem) throw new ExitError(EXIT_USAGE, `error: ${problem}`);
  const dir = resolve(cwd, flags.dir ?? name);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new ExitError(EXIT_USAGE, `error: ${dir} exists and is not empty; pick another --dir`);
  }
  const options: ScaffoldOptions = {
    name,
    tsKcmVersion: flags.tsKcm ?? `^${ownVersion()}`,
    crd: flags.kind
      ? { group: flags.group ?? 'example.com', version: flags.version ?? 'v1alpha1', kind: flags.kind }
      : undefined,
  };
  const files = scaffoldFiles(options);
  if (options.crd) {
    const crdFile = Object.keys(files).find((f) => f.startsWith('crds/'))!;
    const [crd] = loadAll(files[crdFile]!) as CRD[];
    const generated = await generateCRDTypes(crd!);
    files[`src/generated/${generated.name}`] = generated.content;
  }
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

export function newCommand(): Command {
  const cmd = new Command('new').description('create a new project from a template');
  cmd
    .command('controller')
    .description(
      'a controller project: package.json, tsconfig, controller, unit and integration tests, README',
    )
    .argument('<name>', 'controller name (DNS-1123 label), also the package and --controllers name')
    .option('--dir <dir>', 'where to create it (default ./NAME); must not exist or be empty')
    .option('--group <group>', 'API group of a custom resource (with --kind; default example.com)')
    .option('--version <version>', 'API version of the custom resource (with --kind; default v1alpha1)')
    .option('--kind <Kind>', 'also create a namespaced CRD of this kind, its types and a sample object')
    .option(
      '--ts-kcm <spec>',
      "ts-kcm's version in package.json (default ^this version; a tarball path works)",
    )
    .action(async (name: string, flags: NewControllerFlags) => {
      const dir = await newController(name, flags);
      process.stdout.write(`created ${dir}\nnext: cd ${dir} && npm install && npm test && npm start\n`);
    });
  return cmd;
}
