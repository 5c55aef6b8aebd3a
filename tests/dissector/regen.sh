#!/usr/bin/env bash
# tests/dissector/regen.sh BUILD_DIR: rewrites the dissector's golden files
# captures/*.tshark*.txt from the plugin built in BUILD_DIR, by running every
# tshark case of dissector_test.sh with VEIL_REGEN=1.  Run it (as root or not)
# after a deliberate change of the dissector's output or of the corpus, then
# read every changed golden by eye (git diff captures/) before committing: a
# golden that records a bug makes the bug the expected output.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
plugin=$(find "$1/dissector/plugins" -name veil.so -print -quit 2>/dev/null || true)
[ -n "$plugin" ] || { echo "regen: no veil.so under $1/dissector/plugins (build target veil-wireshark)" >&2; exit 1; }
for c in plain encrypted-nokeys encrypted-keys wrong-keys tampered truncated segmentation refused; do
    VEIL_REGEN=1 bash "$here/dissector_test.sh" "$plugin" "$root/captures" "$c"
done
echo "regen: done; review with: git -C $root diff --stat captures/"
