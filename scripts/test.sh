#!/usr/bin/env bash
# Runs Keep's tests. Works on a fresh machine with the Rust toolchain: every .wasm
# fixture is committed, so no WebAssembly compiler is needed.
#
#   ./scripts/test.sh            all tests
#   KEEP_SKIP_CONFORMANCE=1 ...  skip the WASI conformance suite
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A build-time dependency of the EAR crate (cmw -> reqwest) links OpenSSL.
if ! pkg-config --exists openssl 2>/dev/null && command -v apt-get >/dev/null; then
  step "installing pkg-config and libssl-dev (build dependency)"
  apt-get install -y pkg-config libssl-dev >/dev/null || sudo apt-get install -y pkg-config libssl-dev >/dev/null
fi

step "host side, CLI and end-to-end tests (builds the static exec first)"
cargo test --locked

step "the exec's own unit tests (static build, shares target/exec with the embedded exec)"
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo test --locked --profile exec -p keep-exec --target x86_64-unknown-linux-gnu --target-dir target/exec

step "the README's two-terminal walkthrough, as written (loopback ports 8400, 8443)"
if (exec 3<>/dev/tcp/127.0.0.1/8400) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null; then
  echo "skipped: something already listens on 127.0.0.1:8400 or :8443"
elif ! command -v openssl >/dev/null; then
  echo "skipped: openssl is not installed (the walkthrough makes certificates with it)"
else
  cargo build --locked -p keep-cli
  KEEP_BIN_DIR=target/debug scripts/walkthrough.sh
fi

if [ "${KEEP_SKIP_CONFORMANCE:-0}" != 1 ]; then
  step "WASI conformance (wasi-testsuite, wasm32-wasip1)"
  scripts/wasi-testsuite.sh
fi
