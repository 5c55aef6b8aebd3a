#!/usr/bin/env bash
# Installs every Debian 12 package Veil needs to build, test and demo, when missing.
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev   # compilers, sanitizers, libFuzzer
  libssl-dev            # OpenSSL 3 libcrypto: every cryptographic primitive
  libcmocka-dev         # unit tests
  libjansson-dev        # JSON (user directory, capture tool output)
  libsqlite3-dev        # bank ledger
  libpcap-dev           # capture tool
  tcpdump               # loopback capture in the integration tests
  openssl               # the openssl tool: tests check our keys and fingerprints against it
  wireshark-dev tshark  # Wireshark 4.0 plugin SDK and tshark: the dissector and its tests
  python3 procps iproute2 # test helpers: hostile peers, process control, free ports
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
