#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-scheduler and kube-controller-manager from the Go
# module proxy into a per-version cache outside the repository, building only what is
# missing. Prints the directory holding the binaries on its last line of stdout.
#
# The versions are pinned once, in scripts/k8s/kubernetes/go.mod and scripts/k8s/etcd/go.mod.
# A cold build takes 10-25 minutes on 2 cores; progress goes to stderr: packages compiled
# out of the total and elapsed time, on one updating line on a terminal, else a plain line
# every TS_KCM_BUILD_PROGRESS_EVERY (default 100) packages.
#
# Usage: build-control-plane.sh [COMPONENT...]  (default: all four). COMPONENTs are etcd,
# kube-apiserver, kube-scheduler, kube-controller-manager; the env var TS_KCM_CP_COMPONENTS
# (space or comma separated) does the same. The last line of stdout is always the directory.
set -euo pipefail

components="${*:-${TS_KCM_CP_COMPONENTS:-etcd kube-apiserver kube-scheduler kube-controller-manager}}"
components=" ${components//,/ } "
for c in $components; do
  case "$c" in
    etcd | kube-apiserver | kube-scheduler | kube-controller-manager) ;;
    *)
      echo "ts-kcm: unknown control plane component '$c' (etcd, kube-apiserver, kube-scheduler, kube-controller-manager)" >&2
      exit 2
      ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_mod="$here/k8s/kubernetes"
etcd_mod="$here/k8s/etcd"

# Go's default install location is often not on a non-login shell's PATH.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "ts-kcm: Go >= 1.25 is needed to build the local control plane (go not found on PATH)" >&2
  exit 1
fi

# Read the pinned versions from the wrapper modules' require lines.
k8s_version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$k8s_mod/go.mod")"
etcd_version="$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$etcd_mod/go.mod")"
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
  echo "ts-kcm: cannot read pinned versions from $k8s_mod/go.mod or $etcd_mod/go.mod" >&2
  exit 1
fi

cache_root="${TS_KCM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ts-kcm}"
out="$cache_root/k8s/$k8s_version-etcd-$etcd_version"
mkdir -p "$out"

minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

every="${TS_KCM_BUILD_PROGRESS_EVERY:-100}"

# Reads `go build -v` (one package name per line as it compiles) and reports progress;
# anything that is not a package name (compiler errors) passes through unchanged.
progress() { # name total start
  local name="$1" total="$2" start="$3" done=0 line
  while IFS= read -r line; do
    if [[ "$line" =~ ^[A-Za-z0-9._~/-]+$ ]]; then
      done=$((done + 1))
      # Never print more done than the total (go list's estimate can be short by a few).
      ((done > total)) && total=$done
      local msg="ts-kcm: $name: $done/$total packages, $((SECONDS - start))s"
      if [[ -t 2 ]]; then
        printf '\r\033[K%s' "$msg" >&2
      elif ((done % every == 0)); then
        echo "$msg" >&2
      fi
    else
      [[ -t 2 ]] && printf '\r\033[K' >&2
      echo "$line" >&2
    fi
  done
  [[ -t 2 ]] && printf '\r\033[K' >&2
  return 0
}

build() { # name module-dir package ldflags
  local name="$1" dir="$2" pkg="$3" flags="$4"
  if [[ " $components " != *" $name "* || -x "$out/$name" ]]; then
    return 0
  fi
  local start=$SECONDS
  echo "ts-kcm: building $name ($pkg) into $out — the first build takes several minutes" >&2
  # The total: every package go build will compile, standard library included when Go's
  # build cache does not hold it yet (downloads the modules first, once).
  local total
  total="$(cd "$dir" && { CGO_ENABLED=0 go list -trimpath -deps -f '{{if .Stale}}{{.ImportPath}}{{end}}' "$pkg" | grep -c . || true; })"
  (cd "$dir" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$flags" -o "$out/$name.tmp" "$pkg" 2>&1 >/dev/null) |
    progress "$name" "${total:-0}" "$start"
  mv "$out/$name.tmp" "$out/$name"
  echo "ts-kcm: built $name in $((SECONDS - start))s" >&2
}

build etcd "$etcd_mod" go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver "$k8s_mod" k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
build kube-scheduler "$k8s_mod" k8s.io/kubernetes/cmd/kube-scheduler "$ldflags"
build kube-controller-manager "$k8s_mod" k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"

echo "$out"
