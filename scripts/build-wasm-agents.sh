#!/usr/bin/env bash
# Builds the WASM agents in this tree as wasm components, for the daemon to load
# (`[[agents]] kind = "wasm"`, examples/README.md) and for gamesa-wasm's sandbox tests:
# examples/wasm-agent (the fixed-cores example) and crates/gamesa-wasm/guests/hostile
# (a deliberately malicious agent). Installs rustup's wasm32-wasip2 target first if it
# is missing. Honours CARGO_TARGET_DIR; prints the two .wasm paths (absolute), one a line.
#
#   scripts/build-wasm-agents.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip2
# Without rustup (a distro's Rust), cargo says below whether the target is there.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target" >&2
fi

cargo build --release --target "$target" \
    -p gamesa-example-wasm-agent -p gamesa-wasm-hostile >&2

out="$(cd "${CARGO_TARGET_DIR:-target}/$target/release" && pwd)"
for name in gamesa_example_wasm_agent gamesa_wasm_hostile; do
    wasm="$out/$name.wasm"
    [[ -f "$wasm" ]] || { echo "build-wasm-agents: $wasm was not built" >&2; exit 1; }
    echo "$wasm"
done
