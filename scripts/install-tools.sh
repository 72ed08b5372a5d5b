#!/usr/bin/env bash
# Installs the real test tools into .tools/ (nothing system-wide): each scripts/install-*.sh
# besides this one installs one tool and is idempotent. Called by `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
for script in scripts/install-*.sh; do
  [ "$script" = "scripts/install-tools.sh" ] && continue
  echo "== $script"
  bash "$script"
done
