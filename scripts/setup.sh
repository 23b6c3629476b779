#!/usr/bin/env bash
# Installs the Debian packages potc needs to build, test and run its demo.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang        # compilers: generated code is checked with both
  protobuf-c-compiler libprotobuf-c-dev         # ONNX parsing (frontend/)
  libonnx-dev                                   # onnx.proto, the schema we compile with protoc-c
  libcmocka-dev                                 # unit tests
  zlib1g-dev                                    # gzip-compressed calibration data
  llvm-dev                                      # LLVM backend (LLVM-C API)
  libonnx-testdata                              # ONNX conformance tests
  dataset-fashion-mnist                         # demo and accuracy tests
  python3 python3-numpy python3-onnx            # conformance runner, data conversion
  gcc-arm-none-eabi libnewlib-arm-none-eabi     # cross-compile checks of generated code
  valgrind                                      # leak checks of the bad-input corpus
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"
