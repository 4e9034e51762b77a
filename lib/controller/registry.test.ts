import { describe, expect, it } from '@jest/globals';
import { ControllerRegistry, resolveEnabled } from './registry.js';
import type { ControllerDefinition } from './types.js';

function def(name: string, enabledByDefault = true): ControllerDefinition {
  return {
    name,
    enabledByDefault,
    flags: [],
    rbac: [],
    create: () => ({ run: async () => {} }),
  };
}

function registry(): ControllerRegistry {
  // Registration order is deliberately not alphabetical: results follow it.
  return new ControllerRegistry([
    def('service-cidr-controller'),
    def('resourceclaim-controller'),
    def('bootstrap-signer', false),
  ]);
}

describe('ControllerRegistry', () => {
  it('registers, looks up and lists by name in registration order', () => {
    const r = registry();
    expect(r.names()).toEqual(['service-cidr-controller', 'resourceclaim-controller', 'bootstrap-signer']);
    expect(r.get('resourceclaim-controller')?.name).toBe('resourceclaim-controller');
    expect(r.get('nope')).toBeUndefined();
    expect(r.definitions().map((d) => d.name)).toEqual(r.names());
  });

  it('rejects a duplicate name', () => {
    const r = registry();
    expect(() => r.register(def('resourceclaim-controller'))).toThrow(
      'controller "resourceclaim-controller" is already registered',
    );
  });
});

describe('resolveEnabled (--controllers)', () => {
  const cases: { flag: string[] | undefined; want: string[] }[] = [
    { flag: undefined, want: ['service-cidr-controller', 'resourceclaim-controller'] },
    { flag: ['*'], want: ['service-cidr-controller', 'resourceclaim-controller'] },
    { flag: [], want: [] },
    { flag: ['resourceclaim-controller'], want: ['resourceclaim-controller'] },
    { flag: ['*', '-service-cidr-controller'], want: ['resourceclaim-controller'] },
    { flag: ['-service-cidr-controller', '*'], want: ['resourceclaim-controller'] },
    {
      flag: ['*', 'bootstrap-signer'],
      want: ['service-cidr-controller', 'resourceclaim-controller', 'bootstrap-signer'],
    },
    { flag: ['bootstrap-signer'], want: ['bootstrap-signer'] },
    { flag: ['-bootstrap-signer'], want: [] },
    { flag: ['-resourceclaim-controller'], want: [] },
    // Both forms: the first mention wins, as KCM scans the list.
    { flag: ['resourceclaim-controller', '-resourceclaim-controller'], want: ['resourceclaim-controller'] },
    {
      flag: ['-resourceclaim-controller', 'resourceclaim-controller', '*'],
      want: ['service-cidr-controller'],
    },
    { flag: [' * ', ''], want: ['service-cidr-controller', 'resourceclaim-controller'] },
  ];
  for (const { flag, want } of cases) {
    it(`${JSON.stringify(flag)} -> ${JSON.stringify(want)}`, () => {
      expect(resolveEnabled(flag, registry())).toEqual(want);
    });
  }

  it('accepts an alias as the controller name, with or without the dash (as KCM)', () => {
    const r = new ControllerRegistry([
      def('service-cidr-controller'),
      { ...def('resourceclaim-controller'), aliases: ['resource-claim-controller'] },
    ]);
    expect(resolveEnabled(['resource-claim-controller'], r)).toEqual(['resourceclaim-controller']);
    expect(resolveEnabled(['*', '-resource-claim-controller'], r)).toEqual(['service-cidr-controller']);
    // The first mention wins whichever name it uses.
    expect(resolveEnabled(['-resource-claim-controller', 'resourceclaim-controller'], r)).toEqual([]);
  });

  it.each([['foo'], ['-foo']])('unknown name %s is an error listing the known controllers', (item) => {
    expect(() => resolveEnabled(['*', item], registry())).toThrow(
      new Error(
        'unknown controller "foo"; known controllers: bootstrap-signer, resourceclaim-controller, service-cidr-controller',
      ),
    );
  });
});
