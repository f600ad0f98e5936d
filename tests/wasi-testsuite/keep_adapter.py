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

Suites: wasm32-wasip1 (core modules) and wasm32-wasip3 (WASI 0.3
components), world wasi:cli/command only.

Mapping of a test specification onto `keep run`:

  env  {K: V}   ->  --env K=V, one flag per variable (keep never passes
                    the host environment, so the guest sees exactly these)
  root DIR      ->  --dir /abs/DIR::/   (read-write preopen named "/")
  args [A...]   ->  WORKLOAD.wasm -- A... (run in the test's directory,
                    so that argv[0] is the file name, as under wasmtime)
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


def _remove_leftover_links(root: str) -> None:
    # The filesystem tests create `parent.cleanup -> ..` and leave it; the
    # runner removes `*.cleanup` files and directories before each test but
    # skips symbolic links, so one test's link is still there for the next.
    # filesystem-read-directory then fails or passes by the order of the
    # tests (it fails under wasmtime too). Only such links in `root` go.
    for entry in Path(root).glob("*.cleanup"):
        if entry.is_symlink():
            entry.unlink()


def get_name() -> str:
    return "keep"


def get_version() -> str:
    # `keep --version` starts with a line "keep X.Y.Z" (more lines may follow).
    out = subprocess.run([_keep_binary(), "--version"], capture_output=True,
                         encoding="utf-8", check=True).stdout
    words = (out.splitlines() or [""])[0].split()
    return words[1] if len(words) > 1 else "unknown"


def get_wasi_versions() -> List[str]:
    # Preview 1 modules and WASI 0.3 components (component-model async). keep
    # picks the API from what the workload exports, so no flag differs by
    # version (wasmtime needs -Wcomponent-model-async -Sp3).
    return ["wasm32-wasip1", "wasm32-wasip3"]


def get_wasi_worlds() -> List[str]:
    # wasi:http/service needs an HTTP server (`wasmtime serve`); keep runs
    # commands only.
    return ["wasi:cli/command"]


def get_timeout_seconds() -> float:
    return float(os.environ.get("KEEP_TEST_TIMEOUT", "30"))


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    # The world and version are fixed by what get_wasi_versions and
    # get_wasi_worlds announce; the runner skips everything else. keep has no
    # flag for the proposals: it provides no wasi:http, and its network is only
    # what a manifest declares (there is nothing like -Sinherit-network), so
    # tests needing either are expected failures (expectations.toml).
    del proposals, wasi_world, wasi_version
    args, env, root = args_env_root

    if root:
        _remove_leftover_links(root)
    # keep passes the workload path as written as the guest's argv[0]; wasmtime
    # passes the file name only, and cli-env checks for that. So keep is started
    # in the test's directory with the file name (GNU env's --chdir).
    test_dir, test_file = os.path.split(os.path.abspath(test_path))
    argv = ["env", "--chdir", test_dir, _keep_binary(), "run"]
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
    # As the guest's argv[0], the test sees the file name only.
    argv.append(test_file)
    if args:
        # `keep run` takes the workload's arguments only after `--`.
        argv.append("--")
        argv += args
    return argv
