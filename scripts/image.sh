#!/usr/bin/env bash
# npm run image [-- --tag NAME:TAG] [--output FILE]
#
# Builds the ts-kcm image without a container engine, from Debian's packages and the npm
# registry only, as a docker-archive tarball that `kind load image-archive` and
# `docker load` accept. Three layers, each from a well-known source:
#   base  libc6, libgcc-s1, libstdc++6 (what the node binary links) from Debian bookworm,
#         unpacked with dpkg-deb, plus /etc/passwd with the numeric user 1000 and /tmp
#   node  /usr/local/bin/node from the `node` npm package (the devDependency's exact version)
#   app   /app: package.json, package-lock.json, production node_modules (npm ci --omit=dev), dist
# umoci (Debian) writes the OCI layout and its config; skopeo (Debian) turns it into a
# docker-archive. Staged in ~/.cache/ts-kcm/image; the archive goes to .ts-kcm/ (git-ignored). Same entrypoint,
# user and ports as the Dockerfile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# npm's own `node` must be the project's Node 24 (the system one may be older).
PATH="$PWD/node_modules/.bin:$PATH"

version=$(node_modules/.bin/node -p 'require("./package.json").version')
tag="ts-kcm:${version}"
output=".ts-kcm/ts-kcm-image.tar"
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    *) echo "usage: $0 [--tag NAME:TAG] [--output FILE]" >&2; exit 2 ;;
  esac
done

for tool in umoci skopeo dpkg-deb apt-get strip; do
  command -v "$tool" >/dev/null || {
    echo "image: $tool is missing (apt-get install umoci skopeo binutils)" >&2
    exit 1
  }
done

# Staged outside the repository, where jest and tsc do not look.
work="${XDG_CACHE_HOME:-$HOME/.cache}/ts-kcm/image"
mkdir -p "$work"
work=$(cd "$work" && pwd)
step() { printf 'image: %s\n' "$*" >&2; }

# ---- base: the C/C++ runtime node links, from Debian's packages ----
base="$work/base"
packages=(libc6 libgcc-s1 libstdc++6)
stamp=$(apt-cache policy "${packages[@]}" | awk '/Candidate/ {print $2}' | tr '\n' ' ')
if [ "$(cat "$work/base.stamp" 2>/dev/null)" != "$stamp" ]; then
  step "base layer from Debian: ${packages[*]} ($stamp)"
  rm -rf "$base" "$work/debs"
  mkdir -p "$base" "$work/debs"
  (cd "$work/debs" && apt-get download "${packages[@]}" >/dev/null)
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$base"; done
  # Keep the libraries, drop docs, locales and gconv modules nothing here loads.
  rm -rf "${base:?}"/usr/share "${base:?}"/usr/lib/x86_64-linux-gnu/gconv "${base:?}"/usr/libexec \
    "${base:?}"/usr/bin "${base:?}"/usr/sbin "${base:?}"/sbin "${base:?}"/etc/ld.so.conf.d
  mkdir -p "$base"/etc "$base"/tmp "$base"/var/run
  chmod 1777 "$base"/tmp
  printf 'root:x:0:0:root:/root:/sbin/nologin\nts-kcm:x:1000:1000:ts-kcm:/app:/sbin/nologin\n' >"$base"/etc/passwd
  printf 'root:x:0:\nts-kcm:x:1000:\n' >"$base"/etc/group
  printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$base"/etc/ld.so.conf
  ldconfig -r "$base"
  echo "$stamp" >"$work/base.stamp"
fi

# ---- node: the runtime from the `node` npm package (debug info stripped: -20 MB) ----
step "node layer: $(node_modules/.bin/node --version) from the node npm package"
rm -rf "$work/node" && mkdir -p "$work/node/usr/local/bin"
strip --strip-debug -o "$work/node/usr/local/bin/node" "$(readlink -f node_modules/node/bin/node)"

# ---- app: dist and the production dependencies ----
step "app layer: npm run build, npm ci --omit=dev"
npm run build >/dev/null
app="$work/app/app"
rm -rf "$work/app" && mkdir -p "$app/dist"
cp package.json package-lock.json "$app/"
cp -r dist/lib dist/controllers "$app/dist/"
find "$app/dist" -name '*.test.js*' -delete
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline >/dev/null)
# Type declarations and source maps are never loaded at run time (-50 MB).
find "$app/node_modules" \( -name "*.d.ts" -o -name "*.d.mts" -o -name "*.d.cts" -o -name "*.map" \) -delete
rm -f "$app/node_modules/.package-lock.json"
chmod -R go-w "$work/base" "$work/node" "$work/app"

# ---- pack: OCI layout with umoci, docker-archive with skopeo ----
step "packing $tag"
oci="$work/oci"
rm -rf "$oci"
umoci init --layout "$oci"
umoci new --image "$oci:build"
insert() { umoci insert --image "$oci:build" --history.created_by "npm run image: $1" "$2" /; }
insert "base (${packages[*]} from Debian bookworm)" "$work/base"
insert "node $(node_modules/.bin/node --version) from the node npm package" "$work/node"
insert "ts-kcm ${version}: dist + production node_modules" "$work/app"
umoci config --image "$oci:build" --os linux --architecture amd64 \
  --config.user 1000:1000 --config.workingdir /app \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.env NODE_ENV=production \
  --config.entrypoint /usr/local/bin/node --config.entrypoint=--max-semi-space-size=8 \
  --config.entrypoint=--heap-growing-percent=50 --config.entrypoint dist/controllers/main.js --config.cmd run \
  --config.exposedports 8443/tcp --config.exposedports 8081/tcp \
  --config.label "org.opencontainers.image.title=ts-kcm" \
  --config.label "org.opencontainers.image.version=${version}"
mkdir -p "$(dirname "$output")"
rm -f "$output"
skopeo copy --quiet "oci:$oci:build" "docker-archive:$output:$tag"
step "wrote $output ($tag, $(du -h "$output" | cut -f1))"
