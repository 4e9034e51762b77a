import { ControllerRegistry, resolveEnabled } from '../controller/index.js';
import type { ControllerDefinition } from '../controller/types.js';

/**
 * The definitions kube-controller-manager's --controllers rule enables (`*`, `foo`, `-foo`;
 * see lib/controller's resolveEnabled), in registration order. Throws on an unknown name.
 */
export function resolveControllers(
  definitions: ControllerDefinition[],
  list: string[],
): ControllerDefinition[] {
  const registry = new ControllerRegistry(definitions);
  return resolveEnabled(list, registry).map((name) => registry.get(name) as ControllerDefinition);
}
