/**
 * client-go's feature gates that are read from the environment (`KUBE_FEATURE_<Gate>=true|false`,
 * k8s.io/client-go/features/envvar.go), for the ones ts-kcm's client side has. An unset or
 * unparsable value keeps the default, as client-go does (it logs and ignores the bad value).
 */

/** `KUBE_FEATURE_WatchListClient`: the informers' initial state from a WatchList stream (default on). */
export function watchListClientEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.KUBE_FEATURE_WatchListClient?.trim().toLowerCase();
  if (value === 'false') return false;
  return true;
}
