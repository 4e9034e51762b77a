#!/usr/bin/env bash
# bash scripts/kind-down.sh   — deletes the cluster scripts/kind-up.sh made (untried: no kind here).
set -euo pipefail
cluster="${KIND_CLUSTER:-ts-kcm}"
kind delete cluster --name "$cluster"
