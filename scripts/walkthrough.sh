#!/usr/bin/env bash
# Runs the README's two-terminal walkthrough ("Deploying to a host you do not trust":
# the shell blocks marked walkthrough:host and walkthrough:tenant) exactly as written,
# in a scratch directory, and checks what they print.
#
#   scripts/walkthrough.sh                 # with target/release/keep (built if missing)
#   KEEP_BIN_DIR=target/debug scripts/walkthrough.sh
#
# The host block runs in the background as terminal 1 would; the tenant block runs
# when the agent listens; then the agent gets SIGINT (Ctrl-C). The same again for the
# HTTPS + client certificate blocks (needs openssl). Ports 8400 and 8443 must be free.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${KEEP_BIN_DIR:-$ROOT/target/release}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
if [ ! -x "$BIN/keep" ]; then
    (cd "$ROOT" && cargo build --release)
fi

# The lines of the ```sh block after the marker <!-- walkthrough:NAME ... -->.
block() {
    awk -v tag="<!-- walkthrough:$1 " '
        index($0, tag) == 1 { found = 1; next }
        found && !inblock && /^```sh$/ { inblock = 1; next }
        inblock && /^```$/ { exit }
        inblock { print }
    ' "$ROOT/README.md"
}
HOST_BLOCK="$(block host)"
TENANT_BLOCK="$(block tenant)"
HOST_TLS_BLOCK="$(block host-tls)"
TENANT_TLS_BLOCK="$(block tenant-tls)"
if [ -z "$HOST_BLOCK" ] || [ -z "$TENANT_BLOCK" ] || [ -z "$HOST_TLS_BLOCK" ] || [ -z "$TENANT_TLS_BLOCK" ]; then
    echo "walkthrough: the marked blocks are missing from README.md" >&2
    exit 1
fi

WORK="$(mktemp -d)"
[ -z "${KEEP_WALKTHROUGH_KEEP:-}" ] || echo "walkthrough: scratch directory $WORK"
AGENT_PGID=""
cleanup() {
    if [ -n "$AGENT_PGID" ]; then
        kill -TERM -- "-$AGENT_PGID" 2>/dev/null || true
    fi
    [ -n "${KEEP_WALKTHROUGH_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ln -s "$ROOT/examples" "$WORK/examples"
ln -s "$ROOT/tests" "$WORK/tests"
cd "$WORK"
export PATH="$BIN:$PATH"
unset KEEP_HOST KEEP_TOKEN KEEP_CA KEEP_CERT KEEP_KEY

fail() {
    echo "walkthrough FAILED: $1" >&2
    echo "--- terminal 1 (host) ---" >&2
    cat host.log >&2 || true
    echo "--- terminal 2 (tenant) stdout ---" >&2
    cat tenant.out >&2 || true
    echo "--- terminal 2 (tenant) stderr ---" >&2
    cat tenant.err >&2 || true
    for f in host-tls.log tenant-tls.out tenant-tls.err; do
        [ -e "$f" ] && { echo "--- $f ---" >&2; cat "$f" >&2; }
    done
    exit 1
}

# Terminal 1, in its own process group (so Ctrl-C can be sent to it as a terminal would).
setsid bash -c "$HOST_BLOCK" >host.log 2>&1 &
AGENT_PGID=$!
for _ in $(seq 1 300); do
    grep -q "keep host: listening on" host.log 2>/dev/null && break
    sleep 0.1
done
grep -q "keep host: listening on http://127.0.0.1:8400" host.log || fail "the agent did not start"

# Terminal 2 (without -e: the first deploy is refused on purpose).
start=$(date +%s%N)
timeout 120 bash -c "$TENANT_BLOCK" >tenant.out 2>tenant.err || true
took=$(( ($(date +%s%N) - start) / 1000000 ))

# Ctrl-C in terminal 1.
kill -INT -- "-$AGENT_PGID" 2>/dev/null || true
for _ in $(seq 1 100); do
    kill -0 -- "-$AGENT_PGID" 2>/dev/null || break
    sleep 0.1
done
AGENT_PGID=""

# HTTPS with client certificates: terminal 1 again, then terminal 2 (its shell state
# carried over, as in a real terminal: the exports of the first tenant block).
setsid bash -c "$HOST_TLS_BLOCK" >host-tls.log 2>&1 &
AGENT_PGID=$!
for _ in $(seq 1 300); do
    grep -q "keep host: listening on" host-tls.log 2>/dev/null && break
    sleep 0.1
done
grep -q "keep host: listening on https://127.0.0.1:8443 (TLS, client certificates accepted)" host-tls.log ||
    { cat host-tls.log >&2; fail "the TLS agent did not start"; }
timeout 60 bash -c "$(printf '%s\n' "$TENANT_BLOCK" | grep '^export ')
$TENANT_TLS_BLOCK" >tenant-tls.out 2>tenant-tls.err || true
kill -INT -- "-$AGENT_PGID" 2>/dev/null || true
for _ in $(seq 1 100); do
    kill -0 -- "-$AGENT_PGID" 2>/dev/null || break
    sleep 0.1
done
AGENT_PGID=""

expect() { # FILE TEXT
    grep -qF -- "$2" "$1" || fail "$1 lacks: $2"
}
expect tenant.err "state 2 (attested) failed: evidence refused: policy rule insecure.allowed"
expect tenant.err "state 3 provisioned: sealed receipt"
expect tenant.out "Hello from inside a Keep!"
expect tenant.out "hello, Keep"
expect tenant.out "s3cr3t"
expect tenant.err '"event":"exit"'
expect tenant.out "exit status 3"
expect tenant.out "alice"
expect tenant.out "state 1 pre-attestation"
expect tenant.err "terminated"
expect tenant.err "the Keep was terminated (killed by its tenant)"

expect host.log "keep host: shutting down"
if grep -qF -e "s3cr3t" -e "hello, Keep" host.log; then
    fail "the host's log holds a secret or the tenant's input"
fi
expect tenant-tls.out "Hello from inside a Keep!"
expect tenant-tls.err "on https://127.0.0.1:8443 (process backend)"
expect tenant-tls.err "state 3 provisioned"
expect tenant-tls.out "ID                   TENANT"
expect host-tls.log "keep host: shutting down"
echo "walkthrough: the README's two terminals work as written (tenant block ${took} ms)"
