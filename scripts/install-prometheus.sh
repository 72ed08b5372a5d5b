#!/usr/bin/env bash
# Installs Prometheus and Alertmanager (prometheus, promtool, alertmanager, amtool) into
# .tools/prometheus from the Debian packages, run from .tools/bin. Nothing is installed
# or started system-wide: the .debs are only downloaded and unpacked (DESIGN.md §7).
# Idempotent: does nothing when the four binaries are already there and run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD/.tools"
DEST="$ROOT/prometheus"
BINS=(prometheus promtool alertmanager amtool)
mkdir -p "$ROOT/bin"

installed() {
  local bin
  for bin in "${BINS[@]}"; do
    "$ROOT/bin/$bin" --version >/dev/null 2>&1 || return 1
  done
  [ -f "$DEST/usr/bin/alertmanager-fd3" ]
}

if installed; then
  echo "prometheus tools already in $ROOT/bin"
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# apt drops privileges to _apt for downloads; let it write into the temp dir.
chmod 0777 "$WORK"
download() {
  (cd "$WORK" && apt-get download -qq prometheus prometheus-alertmanager)
}
# `apt-get update` once, and only when needed: when the package lists do not know the packages
# yet, or name versions the mirror no longer has (the download fails). List file times are no
# guide: apt keeps the server's times for lists that did not change.
if ! apt-cache show prometheus prometheus-alertmanager >/dev/null 2>&1 || ! download; then
  echo "apt-get update"
  apt-get update -qq
  download
fi

rm -rf "$DEST"
mkdir -p "$DEST"
for deb in "$WORK"/*.deb; do
  dpkg -x "$deb" "$DEST"
done
for bin in prometheus promtool amtool; do
  ln -sfn "$DEST/usr/bin/$bin" "$ROOT/bin/$bin"
done

# Debian's Alertmanager (installed as prometheus-alertmanager) reads its built-in notification
# templates from the fixed folder /usr/share/prometheus/alertmanager and will not start without
# them. Rather than install them there, a copy of the binary gets that path replaced (same
# length, padding slashes are ignored by Go's path cleaning) by /proc/self/fd/3, and the
# .tools/bin/alertmanager wrapper opens the unpacked template folder as descriptor 3.
python3 - "$DEST/usr/bin/prometheus-alertmanager" "$DEST/usr/bin/alertmanager-fd3" <<'PY'
import re, sys
src, dst = sys.argv[1:]
data = open(src, "rb").read()
old = b"/usr/share/prometheus/alertmanager"
new = b"/proc/self/fd/3".ljust(len(old), b"/")
# Only the folder itself, not the longer literals that start with it (the UI paths).
hits = [m.start() for m in re.finditer(re.escape(old) + b"(?!/)", data)]
if len(hits) != 1:
    sys.exit(f"expected the template folder once in {src}, found it {len(hits)} times")
open(dst, "wb").write(data[:hits[0]] + new + data[hits[0] + len(old):])
PY
chmod 0755 "$DEST/usr/bin/alertmanager-fd3"
rm -f "$ROOT/bin/alertmanager"
cat > "$ROOT/bin/alertmanager" <<'SH'
#!/bin/sh
# Alertmanager from the Debian package, reading its templates through descriptor 3
# (see scripts/install-prometheus.sh).
here="$(cd "$(dirname "$0")/.." && pwd)"
exec 3<"$here/prometheus/usr/share/prometheus/alertmanager"
exec "$here/prometheus/usr/bin/alertmanager-fd3" "$@"
SH
chmod 0755 "$ROOT/bin/alertmanager"

installed || { echo "prometheus tools did not install correctly" >&2; exit 1; }
"$ROOT/bin/prometheus" --version 2>&1 | head -1
"$ROOT/bin/alertmanager" --version 2>&1 | head -1
