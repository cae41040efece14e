#!/usr/bin/env bash
# Installs the protocol peers the integration tests use, without Docker and without downloading
# any prebuilt binary: FerretDB is compiled from the Go module proxy, moto comes from PyPI.
#
#   FerretDB v1.24.2 -> ${AWS_MSG_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/aws-msg}/bin/ferretdb
#   moto_server      -> pip install 'moto[server]' (only when it is not on PATH)
#   Lambda runtime   -> scripts/install-lambda-runtime.sh (emulator, Node.js 22, aws-lambda-ric)
set -euo pipefail

FERRETDB_VERSION=v1.24.2
CACHE_DIR="${AWS_MSG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aws-msg}"
BIN="$CACHE_DIR/bin/ferretdb"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "version: $FERRETDB_VERSION"; then
  echo "FerretDB $FERRETDB_VERSION: cached at $BIN"
else
  command -v go >/dev/null || { echo "FerretDB needs Go to build (https://go.dev/dl/); or set MONGODB_URI to a MongoDB you run" >&2; exit 1; }
  echo "FerretDB $FERRETDB_VERSION: building into $BIN"
  # `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds, but the binary panics at
  # start: the module zip lacks build/version/version.txt, which FerretDB's release tooling writes.
  # So: fetch the same module source from the proxy, add that one file, and build it.
  src_dir=$(cd /tmp && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src_dir" ] || { echo "go mod download returned no source directory" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp -r "$src_dir/." "$work/"
  chmod -R u+w "$work"
  echo "$FERRETDB_VERSION" > "$work/build/version/version.txt"
  mkdir -p "$CACHE_DIR/bin"
  (cd "$work" && go build -buildvcs=false -trimpath -o "$BIN.tmp" ./cmd/ferretdb)
  mv "$BIN.tmp" "$BIN"
  "$BIN" --version | head -1
fi

if command -v moto_server >/dev/null; then
  echo "moto_server: $(command -v moto_server)"
else
  echo "moto_server: installing with pip"
  python3 -m pip install --quiet 'moto[server]'
  command -v moto_server >/dev/null || { echo "moto_server still not on PATH after pip install" >&2; exit 1; }
fi

bash "$(dirname "$0")/install-lambda-runtime.sh"
