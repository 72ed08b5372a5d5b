#!/usr/bin/env bash
# Installs the real test tools into .tools/ (nothing system-wide): each scripts/install-*.sh
# besides this one installs one tool and is idempotent. Called by `make install`, which stays quick
# and needs no Go: install-kube.sh (the control plane built from source) is `make kube`'s alone,
# install-peers.sh (the exporters bench/peers compares with) is `make peers`'s alone.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
for script in scripts/install-*.sh; do
  case "$script" in scripts/install-tools.sh | scripts/install-kube.sh | scripts/install-peers.sh) continue ;; esac
  echo "== $script"
  bash "$script"
done
