#!/usr/bin/env bash
# Builds the two exporters bench/peers compares eventpipe with, from their Go modules:
# resmoio/kubernetes-event-exporter and AliyunContainerService/kube-eventer, at the versions
# below. Called by `make peers`; not by `make install` or CI (a cold build is minutes of Go).
#
# The binaries go to a cache outside the checkout, named as bench/peers/exporters.py looks:
#   ${EVENTPIPE_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventpipe/peers}/<binary>
# A binary already there is kept. One that does not build is reported and the other still
# built; the exit code is non-zero when either is missing afterwards.
#
# Where the module proxy refuses a module, EVENTPIPE_PEERS_SRC may name a folder holding a
# checkout of each project at the commit below, as <folder>/<binary> (a git clone of the
# repository): the binary is then built there with `go build` (dependencies from the module
# proxy, kube-eventer's from its vendor folder), never copied into this repository.
set -uo pipefail

cache=${EVENTPIPE_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventpipe/peers}
# binary name, module path, version (resmo's tags are not semver: its newest commit, v1.7+).
peers=(
  "kubernetes-event-exporter github.com/resmoio/kubernetes-event-exporter v0.0.0-20240513212738-907ce911f7ea"
  "kube-eventer github.com/AliyunContainerService/kube-eventer v1.2.8-0.20260414094952-0974bcac0ffd"
)

if ! command -v go >/dev/null; then
  echo "peers: building the exporters needs Go" >&2
  exit 1
fi
mkdir -p "$cache"
status=0
for peer in "${peers[@]}"; do
  read -r binary module version <<<"$peer"
  if [ -x "$cache/$binary" ]; then
    echo "peers: $binary present in $cache"
    continue
  fi
  src=${EVENTPIPE_PEERS_SRC:+$EVENTPIPE_PEERS_SRC/$binary}
  if [ -n "$src" ] && [ -d "$src" ]; then
    commit=${version##*-}
    echo "peers: building $binary from the checkout in $src at $commit"
    mod=()
    [ -d "$src/vendor" ] && mod=(-mod=vendor)
    if (cd "$src" && git checkout -q "$commit" &&
        CGO_ENABLED=0 nice go build "${mod[@]}" -trimpath -o "$cache/$binary" .); then
      continue
    fi
    echo "peers: $binary did not build from $src (error above); bench/peers skips it" >&2
    status=1
    continue
  fi
  echo "peers: building $module@$version"
  if ! CGO_ENABLED=0 GOBIN="$cache" nice go install -trimpath "$module@$version"; then
    echo "peers: $binary did not build (error above); bench/peers skips it" >&2
    status=1
  fi
done
exit $status
