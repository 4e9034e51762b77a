import type { ControllerDefinition } from '../controller/types.js';

/**
 * kube-controller-manager's --controllers rule: `*` turns on every controller enabled by
 * default, `foo` turns foo on, `-foo` turns it off (an explicit name beats `*`). Unknown names
 * are an error, so a typo cannot silently run nothing.
 */
export function resolveControllers(definitions: ControllerDefinition[], list: string[]): ControllerDefinition[] {
  const known = new Set(definitions.map((d) => d.name));
  const items = list.map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) {
    const name = item.startsWith('-') ? item.slice(1) : item;
    if (name === '*') continue;
    if (!known.has(name)) {
      throw new Error(`"${name}" is not in the list of known controllers (known: ${[...known].sort().join(', ')})`);
    }
  }
  const star = items.includes('*');
  return definitions.filter((d) => {
    if (items.includes(`-${d.name}`)) return false;
    if (items.includes(d.name)) return true;
    return star && d.enabledByDefault;
  });
}
