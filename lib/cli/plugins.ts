/**
 * `--plugin PATH_OR_PACKAGE`: controllers from outside this package. A plugin is an ESM
 * module whose default export (or named export `controllers`) is one ControllerDefinition
 * or a list of them. A path (starting with `.` or `/`) is resolved from the working
 * directory; anything else is a package name resolved from the working directory's
 * node_modules, so a project's plugin uses the same ts-kcm copy as the CLI it runs under.
 *
 * Every failure is a usage error (exit 2) whose message names the plugin, because the
 * fix is always on the command line or in the plugin, never in the cluster.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Option } from 'commander';
import type { ControllerDefinition } from '../controller/types.js';
import { EXIT_USAGE, ExitError } from './exit.js';

/** The flag, as the two-phase parse looks for it before commander sees the rest. */
export const PLUGIN_FLAG = '--plugin';

/**
 * The `--plugin` values in `argv`, in order (`--plugin X` and `--plugin=X`, up to a bare `--`).
 * Controller flags must be registered with commander before it parses, and only the
 * plugins know theirs, so they are loaded first.
 */
export function pluginSpecsFromArgv(argv: readonly string[]): string[] {
  const specs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (arg === PLUGIN_FLAG) {
      const value = argv[i + 1];
      if (value !== undefined && !value.startsWith('-')) specs.push(value);
      i++;
    } else if (arg.startsWith(`${PLUGIN_FLAG}=`)) {
      specs.push(arg.slice(PLUGIN_FLAG.length + 1));
    }
  }
  return specs;
}

function pluginError(spec: string, reason: string): ExitError {
  return new ExitError(EXIT_USAGE, `error: --plugin ${spec}: ${reason}`);
}

function isPathSpec(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec);
}

/** The file URL a plugin spec names, resolved from `cwd`. */
export function resolvePlugin(spec: string, cwd: string = process.cwd()): string {
  if (spec.trim() === '') throw pluginError(spec, 'empty plugin name');
  if (isPathSpec(spec)) {
    const path = resolve(cwd, spec);
    if (!existsSync(path)) throw pluginError(spec, `no such file: ${path}`);
    return pathToFileURL(path).href;
  }
  const require = createRequire(join(cwd, 'package.json'));
  try {
    return pathToFileURL(require.resolve(spec)).href;
  } catch (err) {
    // An ESM-only package (exports with an "import" condition only) is not require-resolvable.
    const entry = importEntryOf(spec, cwd);
    if (entry) return pathToFileURL(entry).href;
    const code = (err as { code?: string }).code;
    throw pluginError(
      spec,
      code === 'MODULE_NOT_FOUND'
        ? `package not found from ${cwd} (install it, or pass a path starting with ./)`
        : `cannot resolve: ${(err as Error).message}`,
    );
  }
}

/** `exports["."]`'s import/default entry of a package found in node_modules above `cwd`. */
function importEntryOf(spec: string, cwd: string): string | undefined {
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (name !== spec) return undefined; // subpaths: only what require.resolve finds
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const pkgJson = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(pkgJson)) {
      const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports?: unknown };
      const target = conditionalTarget(
        typeof pkg.exports === 'object' && pkg.exports && '.' in pkg.exports
          ? (pkg.exports as Record<string, unknown>)['.']
          : pkg.exports,
      );
      return target ? join(dirname(pkgJson), target) : undefined;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function conditionalTarget(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const conditions = value as Record<string, unknown>;
  for (const c of ['import', 'node', 'default']) {
    const t = conditionalTarget(conditions[c]);
    if (t) return t;
  }
  return undefined;
}

/** Structural check: enough of a ControllerDefinition for the manager to build it. */
export function isControllerDefinition(value: unknown): value is ControllerDefinition {
  if (!value || typeof value !== 'object') return false;
  const v = value as Partial<ControllerDefinition>;
  return (
    typeof v.name === 'string' &&
    v.name !== '' &&
    typeof v.create === 'function' &&
    Array.isArray(v.flags) &&
    Array.isArray(v.rbac) &&
    typeof v.enabledByDefault === 'boolean'
  );
}

/** The controllers a loaded module offers: default export first, else `controllers`. */
export function definitionsOf(spec: string, mod: Record<string, unknown>): ControllerDefinition[] {
  const exported = mod.default ?? mod.controllers;
  if (exported === undefined) {
    throw pluginError(
      spec,
      'exports no controllers (expected a default export or a named export `controllers`: a ControllerDefinition or a list of them)',
    );
  }
  const list: unknown[] = Array.isArray(exported) ? exported : [exported];
  if (list.length === 0) throw pluginError(spec, 'exports an empty list of controllers');
  list.forEach((item, i) => {
    if (!isControllerDefinition(item)) {
      const where = Array.isArray(exported) ? `item ${i} of its export` : 'its export';
      throw pluginError(
        spec,
        `${where} is not a controller definition (needs name, enabledByDefault, flags, rbac, create; use defineController from ts-kcm)`,
      );
    }
  });
  return list as ControllerDefinition[];
}

/** Imports one plugin and returns its controllers. */
export async function loadPlugin(spec: string, cwd: string = process.cwd()): Promise<ControllerDefinition[]> {
  const url = resolvePlugin(spec, cwd);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw pluginError(spec, `failed to load ${url}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return definitionsOf(spec, mod);
}

/**
 * `builtins` followed by every plugin's controllers, in `--plugin` order. A name may appear
 * once: a plugin cannot replace a built-in controller or another plugin's.
 */
export async function withPlugins(
  builtins: readonly ControllerDefinition[],
  specs: readonly string[],
  cwd: string = process.cwd(),
): Promise<ControllerDefinition[]> {
  const all = [...builtins];
  // Names and aliases share one namespace in --controllers.
  const namesOf = (d: ControllerDefinition): string[] => [d.name, ...(d.aliases ?? [])];
  const owner = new Map<string, string>(
    builtins.flatMap((d) => namesOf(d).map((n) => [n, 'a built-in controller'] as const)),
  );
  for (const spec of specs) {
    for (const def of await loadPlugin(spec, cwd)) {
      for (const name of namesOf(def)) {
        const existing = owner.get(name);
        if (existing) throw pluginError(spec, `controller name "${name}" is already taken by ${existing}`);
      }
      const flagClash = all.flatMap((d) => d.flags).find((f) => def.flags.some((g) => g.name === f.name));
      if (flagClash) {
        throw pluginError(spec, `controller "${def.name}": flag --${flagClash.name} is already defined`);
      }
      for (const name of namesOf(def)) owner.set(name, `plugin ${spec}`);
      all.push(def);
    }
  }
  return all;
}

/**
 * The `--plugin` option for commands that take plugins. main() has loaded them before
 * commander parses; registering the option keeps commander from rejecting it.
 */
export function pluginOption(): Option {
  return new Option(
    `${PLUGIN_FLAG} <path-or-package>`,
    'load controllers from an ESM module (default export or `controllers`: one definition or a list); repeatable',
  ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
}
