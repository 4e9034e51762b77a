import { describe, expect, it } from '@jest/globals';
import { watchListClientEnabled } from './features.js';

describe('watchListClientEnabled (KUBE_FEATURE_WatchListClient)', () => {
  it('is on unless the variable says false', () => {
    expect(watchListClientEnabled({})).toBe(true);
    expect(watchListClientEnabled({ KUBE_FEATURE_WatchListClient: 'true' })).toBe(true);
    expect(watchListClientEnabled({ KUBE_FEATURE_WatchListClient: 'nonsense' })).toBe(true);
    expect(watchListClientEnabled({ KUBE_FEATURE_WatchListClient: 'false' })).toBe(false);
    expect(watchListClientEnabled({ KUBE_FEATURE_WatchListClient: ' FALSE ' })).toBe(false);
  });
});
