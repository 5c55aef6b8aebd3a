#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo: a server and a client on
# loopback exchanging a message once in plaintext mode and once in encrypted mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
exec bash scripts/demo-run.sh build
