#!/usr/bin/env bash
# Build the wmbusloop SoapySDR module into OUTDIR (default: a new temporary directory)
# and print the path of the shared library.  Point SOAPY_SDR_PLUGIN_PATH at OUTDIR
# before SoapySDR loads its modules to make `driver=wmbusloop` available.
# Needs g++ and Debian's libsoapysdr-dev (scripts/install-system-deps.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
outdir="${1:-$(mktemp -d)}"
mkdir -p "$outdir"
if pkg-config --exists SoapySDR 2>/dev/null; then
    flags=$(pkg-config --cflags --libs SoapySDR)
else
    flags="-lSoapySDR"
fi
lib="$outdir/libwmbusLoopback.so"
# shellcheck disable=SC2086  # $flags holds several words on purpose
"${CXX:-g++}" -std=c++14 -O1 -Wall -Wextra -shared -fPIC \
    "$here/wmbus_loopback.cpp" -o "$lib" $flags
echo "$lib"
