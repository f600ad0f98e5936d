#!/usr/bin/env bash
# Runs the official WASI conformance suite (wasi-testsuite: its preview 1 and
# WASI 0.3 suites) against `keep run`. See tests/wasi-testsuite/README.md.
#
#   scripts/wasi-testsuite.sh                       all wasm32-wasip1 and -wasip3 suites
#   scripts/wasi-testsuite.sh -e my-expect.toml     more expectations (added to keep's
#                                                   tests/wasi-testsuite/expectations.toml,
#                                                   and -kvm.toml on kvm);
#                                                   other args go to the runner
#   scripts/wasi-testsuite.sh --backend kvm         every test in a KVM Keep
#
# Environment:
#   WASI_TESTSUITE_DIR     checkout of the suite's prod/testsuite-base branch
#                          (default tests/wasi-testsuite/.suite); when it is
#                          missing the script says so and exits 0 ("skipped")
#   KEEP_BIN               keep binary (default target/release/keep, then
#                          target/debug/keep)
#   WASI_TESTSUITE_PYTHON  Python >= 3.12 for the venv (default: pyenv's 3.12)
#   KEEP_BACKEND           `keep run --backend` (also set by --backend NAME)
#   KEEP_RUN_FLAGS, KEEP_TEST_TIMEOUT   read by the adapter
#   WASI_TESTSUITE_VERSIONS  which suites (default "wasm32-wasip1 wasm32-wasip3")
#
# Exit status: 0 when every test passed (or the suite is absent), 1 when any
# test failed, 2 when the run could not be set up.
set -euo pipefail
CALLER_PWD=$PWD
cd "$(dirname "$0")/.."
REPO=$PWD

if [ "${1:-}" = "--backend" ]; then
  [ -n "${2:-}" ] || { echo "wasi-testsuite: --backend needs a name (process, kvm)" >&2; exit 2; }
  export KEEP_BACKEND=$2
  shift 2
fi

say() { printf 'wasi-testsuite: %s\n' "$*"; }
die() { say "error: $*" >&2; exit 2; }

# Expectation files: keep's own, then the caller's (relative to where it was
# called from). The runner takes them in one --expectations list (a second
# flag would replace the first).
abs_from_caller() { (cd "$CALLER_PWD" && realpath -- "$1") || die "no such file: $1"; }
expect=("$REPO/tests/wasi-testsuite/expectations.toml")
runner_args=()
while [ $# -gt 0 ]; do
  case $1 in
    -e|--expectations|--exclude-filter)
      shift
      while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
        expect+=("$(abs_from_caller "$1")"); shift
      done ;;
    --expectations=*|--exclude-filter=*) expect+=("$(abs_from_caller "${1#*=}")"); shift ;;
    *) runner_args+=("$1"); shift ;;
  esac
done

SUITE=${WASI_TESTSUITE_DIR:-tests/wasi-testsuite/.suite}
if [ ! -f "$SUITE/test-runner/wasi_test_runner/__main__.py" ]; then
  say "no suite at $SUITE; get it with: git clone --depth 1 --branch prod/testsuite-base https://github.com/WebAssembly/wasi-testsuite tests/wasi-testsuite/.suite"
  say "skipped"
  exit 0
fi
SUITE=$(cd "$SUITE" && pwd)

# The keep binary, exported so the adapter uses the same one.
if [ -z "${KEEP_BIN:-}" ]; then
  for candidate in target/release/keep target/debug/keep; do
    if [ -x "$candidate" ]; then KEEP_BIN=$REPO/$candidate; break; fi
  done
fi
[ -n "${KEEP_BIN:-}" ] || die "no keep binary in target/release or target/debug; run cargo build first (or set KEEP_BIN)"
[ -x "$KEEP_BIN" ] || die "KEEP_BIN=$KEEP_BIN is not an executable"
KEEP_BIN=$(cd "$(dirname "$KEEP_BIN")" && pwd)/$(basename "$KEEP_BIN")
export KEEP_BIN

# A Python of at least 3.12 (the runner uses 3.11+ modules; we pin 3.12).
is_py312() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
find_python() {
  if [ -n "${WASI_TESTSUITE_PYTHON:-}" ]; then
    echo "$WASI_TESTSUITE_PYTHON"; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local root version
    root=$(pyenv root)
    version=$(ls "$root/versions" 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | sort -t. -k3 -n | tail -n 1 || true)
    if [ -n "$version" ] && [ -x "$root/versions/$version/bin/python3.12" ]; then
      echo "$root/versions/$version/bin/python3.12"; return
    fi
  fi
  local p
  for p in python3.12 python3; do
    if command -v "$p" >/dev/null 2>&1 && is_py312 "$(command -v "$p")"; then
      command -v "$p"; return
    fi
  done
}
PYTHON=$(find_python)
[ -n "$PYTHON" ] || die "no Python 3.12 found (pyenv install 3.12, or set WASI_TESTSUITE_PYTHON)"
is_py312 "$PYTHON" || die "$PYTHON is older than 3.12"

# The runner's virtualenv, reinstalled when its requirements change.
VENV=$REPO/target/wasi-testsuite-venv
REQS=$SUITE/test-runner/requirements.txt
stamp=$(cat "$REQS" "$SUITE"/test-runner/requirements/*.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || ! is_py312 "$VENV/bin/python"; then
  say "creating $VENV with $PYTHON"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" != "$stamp" ]; then
  say "installing the runner's requirements"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  echo "$stamp" >"$VENV/.requirements-stamp"
fi

# The suites, tests/<language>/testsuite/<version>: preview 1 and WASI 0.3.
cd "$SUITE"
versions=${WASI_TESTSUITE_VERSIONS:-"wasm32-wasip1 wasm32-wasip3"}
suites=()
for v in $versions; do
  for dir in tests/*/testsuite/"$v"; do
    [ -f "$dir/manifest.json" ] && suites+=("$dir")
  done
done
[ "${#suites[@]}" -gt 0 ] || die "no tests/*/testsuite/{${versions// /,}} suites in $SUITE (is it the prod/testsuite-base branch?)"
count=0
for dir in "${suites[@]}"; do
  for wasm in "$dir"/*.wasm; do [ -f "$wasm" ] && count=$((count + 1)); done
done

color=()
[ -t 1 ] || color=(--disable-colors)
RESULTS=$REPO/target/wasi-testsuite-results${KEEP_BACKEND:+-$KEEP_BACKEND}.json
rm -f "$RESULTS"

say "$count tests in ${#suites[@]} suites (the runner skips those of worlds keep does not run), backend ${KEEP_BACKEND:-process}, keep: $KEEP_BIN ($("$KEEP_BIN" --version 2>/dev/null | head -n 1 || echo '?'))"
status=0
"$VENV/bin/python" test-runner/wasi_test_runner.py \
  --runtime-adapter "$REPO/tests/wasi-testsuite/keep_adapter.py" \
  --json-output-location "$RESULTS" \
  "${color[@]}" \
  --test-suite "${suites[@]}" \
  --expectations "${expect[@]}" \
  ${runner_args[@]+"${runner_args[@]}"} || status=$?

# A per-suite table from the JSON results (absent if the caller redirected it).
if [ -f "$RESULTS" ]; then
  "$VENV/bin/python" - "$RESULTS" <<'EOF' || status=1
import json, sys
results = json.load(open(sys.argv[1]))["results"]
totals = {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0}

def counts(c):
    # The runner counts expected failures (xfail) among the passed ones.
    xfail = f" (of which {c['xfailed']} expected failures)" if c["xfailed"] else ""
    return f"{c['passed']} passed{xfail}, {c['failed']} failed, {c['skipped']} skipped"

print("===== Summary (keep) =====")
for suite in results:
    for key in totals:
        totals[key] += suite[key]
    print(f"{suite['name']}: {counts(suite)}")
    for test in sorted(suite["tests"], key=lambda t: t["name"]):
        if test["outcome"] == "fail":
            print(f"  FAIL  {test['name']}")
        elif test["outcome"] == "xpass":
            print(f"  XPASS {test['name']} (passed, but the expectations say it fails)")
total = totals["passed"] + totals["failed"] + totals["skipped"]
print(f"total: {total} tests, {counts(totals)}")
sys.exit(1 if totals["failed"] else 0)
EOF
fi

if [ "$status" -ne 0 ]; then
  say "FAILED"
  exit 1
fi
say "all passed"
