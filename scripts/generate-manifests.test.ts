import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { mergeRules, renderDeployment, renderRBAC } from './generate-manifests.js';

describe('manifests', () => {
  it("match what the code renders (run `npm run manifests` after changing a controller's rbac)", () => {
    expect(readFileSync('manifests/rbac.yaml', 'utf8')).toBe(renderRBAC());
    expect(readFileSync('manifests/deployment.yaml', 'utf8')).toBe(renderDeployment());
  });

  it('merges verbs per (group, resource) and keeps nothing twice', () => {
    expect(
      mergeRules([
        { apiGroups: [''], resources: ['pods', 'events'], verbs: ['get', 'list'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['watch', 'get'] },
      ]),
    ).toEqual([
      { apiGroups: [''], resources: ['events'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    ]);
  });
});
