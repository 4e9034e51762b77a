#!/usr/bin/env bash
# LoadBalancer IPs on kind: a LoadBalancerIPPool on the kind Docker network, and a host route
# so that the IPs service-lb-ipam-controller hands out answer from this machine.
#
#   bash scripts/kind-lb-pool.sh            # pool + route (after scripts/kind-up.sh)
#   bash scripts/kind-lb-pool.sh --demo     # ... then a LoadBalancer Service, and curl it
#   bash scripts/kind-lb-pool.sh --delete   # remove the route, the pool and the demo
#
# The pool is the top /26 of the kind network's IPv4 subnet (Docker hands out container
# addresses from the bottom). The route sends it to the control-plane node, where kube-proxy
# answers for every status.loadBalancer.ingress IP (ipMode VIP). Adding the route needs sudo.
# kind cannot run on the ts-kcm development machines: this script is untried there.
set -euo pipefail

CLUSTER="${KIND_CLUSTER_NAME:-kind}"
NETWORK="${KIND_EXPERIMENTAL_DOCKER_NETWORK:-kind}"
POOL_NAME="${LB_POOL_NAME:-kind}"
NODE="${CLUSTER}-control-plane"
MODE="${1:-}"

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "kind-lb-pool: $1 is required" >&2
    exit 1
  }
}
need docker
need kubectl
need ip

# The first IPv4 subnet of the kind network, e.g. 172.18.0.0/16.
subnet=""
for s in $(docker network inspect "$NETWORK" -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}'); do
  if [[ "$s" == *.*.*.*/* ]]; then
    subnet="$s"
    break
  fi
done
if [[ -z "$subnet" ]]; then
  echo "kind-lb-pool: no IPv4 subnet on Docker network $NETWORK (is the kind cluster up?)" >&2
  exit 1
fi
prefix="${subnet#*/}"
if ((prefix > 26)); then
  echo "kind-lb-pool: subnet $subnet is too small for a /26 pool" >&2
  exit 1
fi
IFS=. read -r a b c d <<<"${subnet%/*}"
net=$(((a << 24) | (b << 16) | (c << 8) | d))
size=$((1 << (32 - prefix)))
pool_start=$((net + size - 64)) # the top /26
pool_cidr="$(((pool_start >> 24) & 255)).$(((pool_start >> 16) & 255)).$(((pool_start >> 8) & 255)).$((pool_start & 255))/26"

node_ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$NODE")
if [[ -z "$node_ip" ]]; then
  echo "kind-lb-pool: $NODE has no address on $NETWORK" >&2
  exit 1
fi

if [[ "$MODE" == "--delete" ]]; then
  kubectl delete service lb-demo --ignore-not-found
  kubectl delete deployment lb-demo --ignore-not-found
  kubectl delete loadbalancerippool "$POOL_NAME" --ignore-not-found
  sudo ip route del "$pool_cidr" via "$node_ip" 2>/dev/null || true
  echo "kind-lb-pool: removed pool $POOL_NAME and the route to $pool_cidr"
  exit 0
fi

kubectl apply -f - <<EOF
apiVersion: lb.ts-kcm.io/v1alpha1
kind: LoadBalancerIPPool
metadata:
  name: ${POOL_NAME}
spec:
  addresses:
    - ${pool_cidr}
EOF
sudo ip route replace "$pool_cidr" via "$node_ip"
echo "kind-lb-pool: pool $POOL_NAME = $pool_cidr, routed via $NODE ($node_ip)"
kubectl get lbpool "$POOL_NAME"

if [[ "$MODE" == "--demo" ]]; then
  kubectl create deployment lb-demo --image=registry.k8s.io/e2e-test-images/agnhost:2.53 \
    --port=8080 -- /agnhost netexec --http-port=8080 --dry-run=client -o yaml | kubectl apply -f -
  kubectl expose deployment lb-demo --type=LoadBalancer --port=80 --target-port=8080 \
    --dry-run=client -o yaml | kubectl apply -f -
  kubectl rollout status deployment/lb-demo --timeout=120s
  ip=""
  for _ in $(seq 1 60); do
    ip=$(kubectl get service lb-demo -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
    [[ -n "$ip" ]] && break
    sleep 1
  done
  if [[ -z "$ip" ]]; then
    echo "kind-lb-pool: lb-demo got no IP; kubectl describe service lb-demo shows the events" >&2
    exit 1
  fi
  echo "kind-lb-pool: lb-demo has $ip"
  curl -fsS "http://$ip/hostname"
  echo
fi
