#!/usr/bin/env bash
# Install the Debian packages some tests need beyond the Python venv:
#   python3-soapysdr libsoapysdr-dev soapysdr-tools g++   SoapySDR transmit + loopback module
#   rtl-433                                               independent receiver (round trips)
#   mosquitto                                             MQTT broker for the output tests
#   gcc python3-dev                                       kernels compiled ahead of time
#                                                         (python -m dsp.build_kernels)
# Idempotent: does nothing when everything is installed.  Needs root (apt-get); as any
# other user it only says what is missing and exits 0, and the tests that need a
# missing package skip with the reason.
set -euo pipefail

PACKAGES=(
    python3-soapysdr
    libsoapysdr-dev
    soapysdr-tools
    g++
    cmake
    rtl-433
    mosquitto
    gcc
    python3-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    # "install ok installed" is dpkg's status of a fully configured package.
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install-system-deps: not root, not installing: ${missing[*]}" >&2
    echo "install-system-deps: tests that need them will be skipped" >&2
    exit 0
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
