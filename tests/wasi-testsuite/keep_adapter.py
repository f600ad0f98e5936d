"""wasi-testsuite runtime adapter for Keep (`keep run`).

The wasi-testsuite runner imports this file as a module and asks it to
describe the runtime (name, version, which WASI versions and worlds it
handles) and to turn each test case into a command line.  Nothing runs
at import time: the runner also executes the file as a script to check
that it is a module-style adapter, and expects no output from that.

Environment variables:

  KEEP_BIN           the keep binary; default: target/release/keep, then
                     target/debug/keep, relative to the repository root.
  KEEP_RUN_FLAGS     extra flags for `keep run`, split like a shell would
                     (for example "--memory 1GiB --timeout 1m").
  KEEP_BACKEND       the backend, `keep run --backend` (default: keep's own
                     default, process); `kvm` runs every test in a KVM Keep.
  KEEP_TEST_TIMEOUT  seconds the runner waits for one test (default 30).

Mapping of a test specification onto `keep run`:

  env  {K: V}   ->  --env K=V, one flag per variable (keep never passes
                    the host environment, so the guest sees exactly these)
  root DIR      ->  --dir /abs/DIR::/   (read-write preopen named "/")
  args [A...]   ->  WORKLOAD.wasm -- A...
  exit_code     ->  compared by the runner with keep's exit status, which
                    is the workload's own exit code
"""

import os
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def _keep_binary() -> str:
    configured = os.environ.get("KEEP_BIN")
    if configured:
        return configured
    for profile in ("release", "debug"):
        candidate = _REPO_ROOT / "target" / profile / "keep"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    # Let the caller fail with FileNotFoundError: the runner reports the
    # adapter as unavailable in that case.
    return str(_REPO_ROOT / "target" / "debug" / "keep")


def _extra_run_flags() -> List[str]:
    return shlex.split(os.environ.get("KEEP_RUN_FLAGS", ""))


def get_name() -> str:
    return "keep"


def get_version() -> str:
    # `keep --version` starts with a line "keep X.Y.Z" (more lines may follow).
    out = subprocess.run([_keep_binary(), "--version"], capture_output=True,
                         encoding="utf-8", check=True).stdout
    words = (out.splitlines() or [""])[0].split()
    return words[1] if len(words) > 1 else "unknown"


def get_wasi_versions() -> List[str]:
    # Preview 3 suites need component-model async, which keep does not do.
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command"]


def get_timeout_seconds() -> float:
    return float(os.environ.get("KEEP_TEST_TIMEOUT", "30"))


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    # The proposals, world and version are fixed by what get_wasi_versions
    # and get_wasi_worlds announce; the runner skips everything else.
    del proposals, wasi_world, wasi_version
    args, env, root = args_env_root

    argv = [_keep_binary(), "run"]
    backend = os.environ.get("KEEP_BACKEND")
    if backend:
        argv += ["--backend", backend]
    argv += _extra_run_flags()
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    if root:
        # An absolute host path keeps the preopen independent of whichever
        # working directory keep's backend ends up in.
        argv += ["--dir", f"{os.path.abspath(root)}::/"]
    # Keep passes the workload path, as written here, as the guest's argv[0].
    argv.append(test_path)
    if args:
        # `keep run` takes the workload's arguments only after `--`.
        argv.append("--")
        argv += args
    return argv
