#!/usr/bin/env bash
# Builds the real control plane for tests/realkube from source: kube-apiserver,
# kube-controller-manager, kube-scheduler and kubectl from the k8s.io/kubernetes release pinned in
# scripts/kube/go.mod, and etcd from the go.etcd.io/etcd/server/v3 version that release requires.
# Needs Go (the version scripts/kube/go.mod names). Called by `make kube`; not by `make install`.
#
# The binaries are cached outside the checkout, so a fresh clone (as CI makes) reuses them:
#   ${EVENTPIPE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventpipe/kube/<version>}
# A stamp file holds the hash of go.mod and go.sum: when it matches, nothing is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/kube"

version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' go.mod)
cache=${EVENTPIPE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventpipe/kube/$version}
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)
stamp=$(cat go.mod go.sum | sha256sum | cut -d' ' -f1)

have_all() {
  [ "$(cat "$cache/.stamp" 2>/dev/null)" = "$stamp" ] || return 1
  for binary in "${binaries[@]}"; do [ -x "$cache/$binary" ] || return 1; done
}

if have_all; then
  echo "kube $version: binaries present in $cache"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "kube $version: building the control plane needs Go (see docs/kube-tests.md)" >&2
  exit 1
fi

# The version the binaries report (kubectl version, /version): a module build has no git tree.
minor=$(echo "$version" | cut -d. -f2)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done

build=$(mktemp -d "${TMPDIR:-/tmp}/eventpipe-kube-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
echo "kube $version: building ${binaries[*]} into $cache (a cold build takes long)"
go build -trimpath -ldflags "$ldflags" -o "$build/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "$build/etcd" go.etcd.io/etcd/server/v3

mkdir -p "$cache"
for binary in "${binaries[@]}"; do mv -f "$build/$binary" "$cache/$binary"; done
echo "$stamp" > "$cache/.stamp"
echo "kube $version: built into $cache"
