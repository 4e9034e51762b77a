/**
 * The controller registry: controllers are plug-ins, registered once by name, and the
 * manager builds the ones kube-controller-manager's --controllers rule enables.
 */
import type { ControllerDefinition } from './types.js';

/** KCM's default when --controllers is not given. */
export const DEFAULT_CONTROLLERS_FLAG: readonly string[] = ['*'];

export class ControllerRegistry {
  private readonly byName = new Map<string, ControllerDefinition>();

  constructor(definitions: Iterable<ControllerDefinition> = []) {
    for (const d of definitions) this.register(d);
  }

  register(definition: ControllerDefinition): void {
    if (this.byName.has(definition.name))
      throw new Error(`controller "${definition.name}" is already registered`);
    this.byName.set(definition.name, definition);
  }

  get(name: string): ControllerDefinition | undefined {
    return this.byName.get(name);
  }

  /** Registered names, in registration order (the order the manager starts them). */
  names(): string[] {
    return [...this.byName.keys()];
  }

  definitions(): ControllerDefinition[] {
    return [...this.byName.values()];
  }
}

/**
 * kube-controller-manager's --controllers rule: `*` enables every controller that is enabled
 * by default, `foo` enables foo, `-foo` disables foo; an explicit name wins over `*` whatever
 * the order, and if both `foo` and `-foo` appear the first one wins (as KCM's
 * IsControllerEnabled scans the list). An alias counts as its controller's name. An unknown name is an error, so a typo cannot silently run nothing. Empty entries
 * are ignored. Returns the enabled names in registration order.
 */
export function resolveEnabled(
  controllersFlag: readonly string[] | undefined,
  registry: ControllerRegistry,
): string[] {
  const items = (controllersFlag ?? DEFAULT_CONTROLLERS_FLAG).map((s) => s.trim()).filter((s) => s !== '');
  const known = registry.names();
  const canonical = new Map<string, string>();
  for (const d of registry.definitions()) for (const alias of d.aliases ?? []) canonical.set(alias, d.name);
  /** name -> enabled?, decided by the first explicit mention. */
  const explicit = new Map<string, boolean>();
  let star = false;
  for (const item of items) {
    if (item === '*') {
      star = true;
      continue;
    }
    const negated = item.startsWith('-');
    const given = negated ? item.slice(1) : item;
    const name = canonical.get(given) ?? given;
    if (registry.get(name) === undefined) {
      throw new Error(`unknown controller "${name}"; known controllers: ${[...known].sort().join(', ')}`);
    }
    if (!explicit.has(name)) explicit.set(name, !negated);
  }
  return known.filter((name) => {
    const decided = explicit.get(name);
    if (decided !== undefined) return decided;
    return star && (registry.get(name) as ControllerDefinition).enabledByDefault;
  });
}
