#!/usr/bin/env bash
# bash scripts/kind-up.sh   — a kind cluster running ts-kcm in-cluster (untried: no kind here).
#
# Creates cluster $KIND_CLUSTER (default ts-kcm) whose own kube-controller-manager has
# ts-kcm's controllers turned off, builds the image with `npm run image`, loads it with
# `kind load image-archive`, applies manifests/overlays/kind, waits for the rollout, and
# shows the Lease holder and a few metrics. scripts/kind-down.sh deletes the cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cluster="${KIND_CLUSTER:-ts-kcm}"
archive=.ts-kcm/ts-kcm-image.tar
for tool in kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is not installed" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --config - <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    kubeadmConfigPatches:
      - |
        kind: ClusterConfiguration
        controllerManager:
          extraArgs:
            controllers: "*,-service-cidr-controller,-resourceclaim-controller"
  - role: worker
  - role: worker
YAML
fi
context="kind-$cluster"

npm run image -- --tag ts-kcm:dev --output "$archive"
kind load image-archive "$archive" --name "$cluster"
kubectl --context "$context" apply -k manifests/overlays/kind
kubectl --context "$context" -n ts-kcm-system rollout status deployment/ts-kcm --timeout=180s
kubectl --context "$context" -n ts-kcm-system get pods -o wide

echo "leader:"
kubectl --context "$context" -n ts-kcm-system get lease ts-kcm -o jsonpath='{.spec.holderIdentity}{"\n"}'
echo "metrics (leader_election_master_status, workqueue depth):"
# /metrics is HTTPS with delegated auth: a scraper ServiceAccount bound to the metrics-reader role.
kubectl --context "$context" -n ts-kcm-system create serviceaccount metrics-scraper \
  --dry-run=client -o yaml | kubectl --context "$context" apply -f -
kubectl --context "$context" create clusterrolebinding ts-kcm-metrics-scraper \
  --clusterrole=ts-kcm-metrics-reader --serviceaccount=ts-kcm-system:metrics-scraper \
  --dry-run=client -o yaml | kubectl --context "$context" apply -f -
token="$(kubectl --context "$context" -n ts-kcm-system create token metrics-scraper)"
kubectl --context "$context" -n ts-kcm-system port-forward service/ts-kcm-metrics 18443:8443 >/dev/null &
forward=$!
trap 'kill "$forward" 2>/dev/null || true' EXIT
sleep 2
# The serving certificate is self-signed (no --metrics-cert-dir in the base), hence -k.
curl -fsSk -H "Authorization: Bearer $token" https://127.0.0.1:18443/metrics |
  grep -E '^(leader_election_master_status|workqueue_depth)' || true
