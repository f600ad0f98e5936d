#!/usr/bin/env bash
# Rebuilds every WebAssembly test fixture from its source.
#
#   scripts/build-fixtures.sh
#
# Sources:  tests/fixtures/src/*.c    (WASI preview 1 commands, clang + wasi-libc)
#           tests/fixtures/src/*.wat  (core modules, wabt's wat2wasm)
# Outputs:  tests/fixtures/<name>.wasm, plus
#           tests/fixtures/not_wasm.wasm and truncated.wasm (invalid inputs),
#           tests/fixtures/hello_component.wasm and open_many_component.wasm
#           (those modules as WASI preview 2 wasi:cli/command components),
#           tests/fixtures/socket_check_component.wasm, tcp_echo_component.wasm and
#           tcp_serve_component.wasm (hand-written canonical-ABI WAT in src/<name>/),
#           tests/fixtures/no_run_component.wasm (src/no_run/no_run.wat, wasm-tools parse), and examples/hello.wasm (a copy of
#           hello.wasm, source examples/hello.c, kept the same as the fixture).
#
# The outputs are committed: the tests never need these tools, only someone
# changing a fixture does. Tools (Debian 12):
#   apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32 wabt
#   cargo install wasm-tools --locked                  # only for the component
# The preview 1 -> component adapter comes from the crates.io crate
# wasi-preview1-component-adapter-provider, pinned to the project's wasmtime
# version (ADAPTER_VERSION below). The script fetches it with cargo into
# ~/.cargo/registry; set ADAPTER=/path/to/wasi_snapshot_preview1.command.wasm
# to use another copy. Set SKIP_COMPONENT=1 to leave the *_component.wasm files
# as they are (e.g. when wasm-tools is not installed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIX="$ROOT/tests/fixtures"
SRC="$FIX/src"
ADAPTER_VERSION="${ADAPTER_VERSION:-48.0.8}"

CC="${CC:-clang}"
# --strip-debug drops the DWARF that Debian's wasi-libc carries (over 100 KiB per
# module) but keeps the "name" section, so backtraces still show function names.
CFLAGS=(--target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-debug)
SYSROOT="${WASI_SYSROOT:-}"
if [[ -n "$SYSROOT" ]]; then
    CFLAGS+=("--sysroot=$SYSROOT")
fi

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "build-fixtures: '$1' not found; $2" >&2
        exit 1
    }
}

need "$CC" "install clang, lld, wasi-libc and libclang-rt-dev-wasm32 (Debian) or set CC"
need wat2wasm "install wabt (apt-get install -y wabt)"

built() {
    printf '  %-34s %8d bytes\n' "${1#"$ROOT"/}" "$(stat -c %s "$1")"
}

echo "C sources (wasm32-wasi, -O2):"
for src in "$SRC"/*.c; do
    name="$(basename "$src" .c)"
    "$CC" "${CFLAGS[@]}" "$src" -o "$FIX/$name.wasm"
    built "$FIX/$name.wasm"
done

echo "WAT sources:"
for src in "$SRC"/*.wat; do
    name="$(basename "$src" .wat)"
    # --debug-names keeps the function names for backtraces.
    wat2wasm --debug-names "$src" -o "$FIX/$name.wasm"
    built "$FIX/$name.wasm"
done

echo "Invalid inputs:"
printf 'this is not a WebAssembly module\n' >"$FIX/not_wasm.wasm"
built "$FIX/not_wasm.wasm"
head -c 40 "$FIX/hello.wasm" >"$FIX/truncated.wasm"
built "$FIX/truncated.wasm"

echo "Example:"
cmp -s "$SRC/hello.c" "$ROOT/examples/hello.c" || {
    echo "build-fixtures: examples/hello.c differs from tests/fixtures/src/hello.c" >&2
    exit 1
}
cp "$FIX/hello.wasm" "$ROOT/examples/hello.wasm"
built "$ROOT/examples/hello.wasm"

if [[ "${SKIP_COMPONENT:-0}" == 1 ]]; then
    echo "Component: skipped (SKIP_COMPONENT=1), hello_component.wasm left as it is"
else
    need wasm-tools "run 'cargo install wasm-tools --locked', or set SKIP_COMPONENT=1"
    adapter="${ADAPTER:-}"
    if [[ -z "$adapter" ]]; then
        need cargo "install Rust, or set ADAPTER to the adapter's .wasm"
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
        mkdir -p "$tmp/src"
        cat >"$tmp/Cargo.toml" <<TOML
[package]
name = "fetch-adapter"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_VERSION"
TOML
        echo 'fn main() {}' >"$tmp/src/main.rs"
        (cd "$tmp" && cargo fetch --quiet)
        adapter="$(cd "$tmp" && cargo metadata --format-version 1 --quiet |
            python3 -c 'import json, sys
m = json.load(sys.stdin)
for p in m["packages"]:
    if p["name"] == "wasi-preview1-component-adapter-provider":
        print(p["manifest_path"].rsplit("/", 1)[0]); break')/artefacts/wasi_snapshot_preview1.command.wasm"
    fi
    [[ -f "$adapter" ]] || {
        echo "build-fixtures: adapter not found at $adapter" >&2
        exit 1
    }
    echo "Component (adapter $(basename "$adapter"), wasi-preview1-component-adapter-provider $ADAPTER_VERSION):"
    # socket_check, tcp_echo, tcp_serve: hand-written canonical-ABI modules (WAT) embedded with their own
    # world, whose wasi:* packages are wasmtime-wasi's WIT of the same version.
    wit="$(mktemp -d)"
    wasi_wit="$(cd "$ROOT" && cargo metadata --format-version 1 --quiet |
        python3 -c 'import json, sys
m = json.load(sys.stdin)
for p in m["packages"]:
    if p["name"] == "wasmtime-wasi":
        print(p["manifest_path"].rsplit("/", 1)[0]); break')/src/p2/wit/deps"
    mkdir -p "$wit/deps"
    cp "$wasi_wit"/*.wit "$wit/deps/"
    for hand in socket_check:socket-check tcp_echo:tcp-echo tcp_serve:tcp-serve; do
        name="${hand%%:*}" world="${hand#*:}"
        cp "$SRC/$name/world.wit" "$wit/world.wit"
        wasm-tools parse "$SRC/$name/$name.wat" -o "$wit/core.wasm"
        wasm-tools component embed --world "$world" "$wit" "$wit/core.wasm" -o "$wit/embedded.wasm"
        wasm-tools component new "$wit/embedded.wasm" -o "$FIX/${name}_component.wasm"
        wasm-tools validate "$FIX/${name}_component.wasm"
        built "$FIX/${name}_component.wasm"
    done
    rm -rf "$wit"
    # A component with no wasi:cli/run (nothing for keep run to run).
    wasm-tools parse "$SRC/no_run/no_run.wat" -o "$FIX/no_run_component.wasm"
    wasm-tools validate "$FIX/no_run_component.wasm"
    built "$FIX/no_run_component.wasm"
    for core in hello open_many; do
        wasm-tools component new "$FIX/$core.wasm" \
            --adapt "wasi_snapshot_preview1=$adapter" -o "$FIX/${core}_component.wasm"
        wasm-tools validate "$FIX/${core}_component.wasm"
        built "$FIX/${core}_component.wasm"
    done
fi

echo "Checks:"
for f in "$FIX"/*.wasm; do
    case "$(basename "$f")" in
        not_wasm.wasm | truncated.wasm | *_component.wasm) continue ;;
    esac
    wasm-validate "$f"
done
big="$(find "$FIX" "$ROOT/examples" -name '*.wasm' -size +200k)"
if [[ -n "$big" ]]; then
    echo "build-fixtures: fixtures over 200 KiB:" >&2
    echo "$big" >&2
    exit 1
fi
echo "  all core modules validate; all fixtures are under 200 KiB"
