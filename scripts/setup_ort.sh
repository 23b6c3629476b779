#!/bin/sh
# Install onnxruntime-node (CPU only) outside the repo tree, as a float
# reference and speed peer for potc (see scripts/ort_run.js).
#
#   scripts/setup_ort.sh            # installs into ${POTC_ORT_DIR:-/opt/potc-ort}
#   POTC_ORT_DIR=/some/dir scripts/setup_ort.sh
#
# Idempotent: does nothing if onnxruntime-node is already installed there.
# Exits 0 with a message when npm is not available (the reference is optional).
set -eu

ORT_DIR="${POTC_ORT_DIR:-/opt/potc-ort}"
PKG="onnxruntime-node${POTC_ORT_VERSION:+@$POTC_ORT_VERSION}"

if [ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] &&
   command -v node >/dev/null 2>&1 &&
   (cd "$ORT_DIR" && node -e 'require("onnxruntime-node")') >/dev/null 2>&1; then
    ver=$(cd "$ORT_DIR" && node -p 'require("onnxruntime-node/package.json").version' 2>/dev/null || echo '?')
    echo "setup_ort: onnxruntime-node $ver already installed in $ORT_DIR"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "setup_ort: npm not found; skipping onnxruntime-node install (install nodejs and npm to enable it)"
    exit 0
fi
if ! command -v node >/dev/null 2>&1; then
    echo "setup_ort: node not found; skipping onnxruntime-node install"
    exit 0
fi

mkdir -p "$ORT_DIR"
cd "$ORT_DIR"
if [ ! -f package.json ]; then
    printf '{\n  "name": "potc-ort",\n  "private": true,\n  "description": "onnxruntime-node reference for potc"\n}\n' > package.json
fi

echo "setup_ort: installing $PKG into $ORT_DIR"
# The default postinstall tries to download GPU (CUDA/TensorRT) binaries,
# which fails without general network access; the CPU binaries ship in the
# npm package itself.
ONNXRUNTIME_NODE_INSTALL=skip \
ONNXRUNTIME_NODE_INSTALL_CUDA=skip \
    npm install --no-audit --no-fund --loglevel=error "$PKG"

node -e 'require("onnxruntime-node")' >/dev/null
ver=$(node -p 'require("onnxruntime-node/package.json").version')
echo "setup_ort: onnxruntime-node $ver installed in $ORT_DIR"
