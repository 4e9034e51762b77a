/** What `ts-kcm manifests` prints; kept apart so that the other commands do not load the renderer. */
import type { ControllerDefinition } from '../controller/types.js';
import { renderManifests, toYaml } from '../manifests/index.js';
import { DEFAULT_MANIFESTS_OPTIONS, type ManifestsOptions } from './manifests.js';

/** The objects for the enabled controllers, the same set as manifests/ (lib/manifests). */
export function manifestObjects(
  definitions: ControllerDefinition[],
  options: Partial<ManifestsOptions> = {},
): object[] {
  const o = { ...DEFAULT_MANIFESTS_OPTIONS, ...options };
  return renderManifests({ definitions, ...o, leaseName: o.name });
}

/** The multi-document YAML `ts-kcm manifests` prints. */
export function manifestsYaml(
  definitions: ControllerDefinition[],
  options: Partial<ManifestsOptions> = {},
): string {
  return toYaml(manifestObjects(definitions, options));
}
