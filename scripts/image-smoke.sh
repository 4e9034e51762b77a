#!/usr/bin/env bash
# bash scripts/image-smoke.sh [ARCHIVE]   (default .ts-kcm/ts-kcm-image.tar from `npm run image`)
#
# Runs the very image `npm run image` built, without a container engine: unpacks its rootfs
# with umoci, mounts a service-account token (TokenRequest for the manifests' ServiceAccount,
# after `kubectl apply -k manifests`) and the CA at the pod path inside it, and runs the
# image's entrypoint with the Deployment's args in a chroot as uid 1000 against a local
# control plane ($KUBECONFIG if set, else one started in .ts-kcm/smoke-cp and stopped after).
# Passes when the caches sync and /readyz answers 200. Needs root (chroot). Not in npm test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$PWD/node_modules/.bin:$PATH"
archive="${1:-.ts-kcm/ts-kcm-image.tar}"
started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/ts-kcm-smoke.XXXXXX")
pid=""
own_cp=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  if [ -n "$own_cp" ]; then node dist/controllers/main.js controlplane down --dir "$own_cp" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${KUBECONFIG:-}" ]; then
  own_cp=.ts-kcm/smoke-cp
  KUBECONFIG=$(node dist/controllers/main.js controlplane up --dir "$own_cp")
  export KUBECONFIG
fi

skopeo copy --quiet "docker-archive:$archive" "oci:$work/oci:smoke"
umoci unpack --image "$work/oci:smoke" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
sa="$rootfs/var/run/secrets/kubernetes.io/serviceaccount"
mkdir -p "$sa"
kubectl apply -k manifests >/dev/null
kubectl -n ts-kcm-system create token ts-kcm --duration=10m >"$sa/token"
kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
  base64 -d >"$sa/ca.crt"
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
hostport=${server#https://}

# The Deployment's args, bind addresses on free loopback ports.
mapfile -t args < <(node -e '
  import("./dist/lib/manifests/index.js").then((m) => {
    for (const a of m.deploymentArgs(m.DEFAULT_MANIFEST_OPTIONS))
      console.log(/^--(metrics|health-probe)-bind-address=/.test(a) ? a.split("=")[0] + "=127.0.0.1:0" : a);
  })')
# The image's own entrypoint, working directory and environment (from the OCI config).
mapfile -t entry < <(node -e '
  const c = require(process.argv[1]).process;
  for (const a of c.args) console.log(a.startsWith("/") || a === c.args[0] ? a : c.cwd + "/" + a);' \
  "$work/bundle/config.json")
mapfile -t image_env < <(node -e 'for (const e of require(process.argv[1]).process.env) console.log(e)' \
  "$work/bundle/config.json")
# The entrypoint ends with the image's CMD (`run`); the Deployment's args replace it.
unset 'entry[-1]'

env -i "${image_env[@]}" KUBERNETES_SERVICE_HOST="${hostport%:*}" KUBERNETES_SERVICE_PORT="${hostport##*:}" \
  /usr/sbin/chroot --userspec=1000:1000 "$rootfs" "${entry[@]}" "${args[@]}" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 120); do
  if grep -q '"message":"caches synced"' "$work/log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.5
done
if ! grep -q '"message":"caches synced"' "$work/log"; then
  echo "image-smoke: FAILED, the caches did not sync; log:" >&2
  cat "$work/log" >&2
  exit 1
fi
probes=$(sed -n 's/.*"address":"\([^"]*\)".*"message":"serving health probes".*/\1/p' "$work/log" | head -1)
ready=$(node -e 'fetch("http://" + process.argv[1] + "/readyz").then((r) => console.log(r.status))' "$probes")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
if [ "$ready" != 200 ]; then
  echo "image-smoke: FAILED, /readyz answered $ready" >&2
  exit 1
fi
echo "image-smoke: ok in $(($(date +%s) - started)) s: caches synced, /readyz 200, image $(du -h "$archive" | cut -f1)${uid:+ (uid $uid)}"
