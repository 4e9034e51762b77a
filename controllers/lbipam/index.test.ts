import { describe, expect, it } from '@jest/globals';
import { builtinControllers } from '../index.js';
import { serviceLBIPAMController } from './index.js';

describe('service-lb-ipam-controller definition', () => {
  it('is a built-in, on by default, with its flags', () => {
    expect(builtinControllers).toContain(serviceLBIPAMController);
    expect(serviceLBIPAMController.name).toBe('service-lb-ipam-controller');
    expect(serviceLBIPAMController.enabledByDefault).toBe(true);
    expect(serviceLBIPAMController.flags.map((f) => [f.name, f.type ?? 'number', f.defaultValue])).toEqual([
      ['concurrent-lb-ipam-syncs', 'number', 5],
      ['lb-ipam-default-class', 'boolean', 0],
      ['lb-ipam-release-hold', 'duration', 10_000],
    ]);
  });

  it('asks for exactly the rules it uses', () => {
    expect(serviceLBIPAMController.rbac).toEqual([
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'patch', 'watch'] },
      { apiGroups: [''], resources: ['services/status'], verbs: ['patch'] },
      { apiGroups: ['lb.ts-kcm.io'], resources: ['loadbalancerippools'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['lb.ts-kcm.io'], resources: ['loadbalancerippools/status'], verbs: ['patch'] },
      {
        apiGroups: ['networking.k8s.io'],
        resources: ['ipaddresses'],
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'watch'],
      },
      { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch', 'update'] },
    ]);
  });
});
