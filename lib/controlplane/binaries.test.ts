import { describe, expect, test } from '@jest/globals';
import { cachedBinDir, pinnedVersions } from './binaries.js';

describe('binaries', () => {
  test('pinned versions come from the wrapper go.mod files', () => {
    const v = pinnedVersions();
    expect(v.kubernetes).toMatch(/^v1\.\d+\.\d+$/);
    expect(v.etcd).toMatch(/^v3\.\d+\.\d+$/);
  });

  test('cache dir follows the build script: TS_KCM_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    const v = { kubernetes: 'v1.35.4', etcd: 'v3.6.14' };
    expect(cachedBinDir(v, { TS_KCM_CACHE_DIR: '/c' })).toBe('/c/k8s/v1.35.4-etcd-v3.6.14');
    expect(cachedBinDir(v, { XDG_CACHE_HOME: '/x' })).toBe('/x/ts-kcm/k8s/v1.35.4-etcd-v3.6.14');
    expect(cachedBinDir(v, {})).toMatch(/\/\.cache\/ts-kcm\/k8s\/v1\.35\.4-etcd-v3\.6\.14$/);
  });
});
