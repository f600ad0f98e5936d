#!/usr/bin/env python3
"""keep deploy of hello on the kvm backend vs keep run --backend kvm (and the process
backend for reference): p50/p99 of the time to the first line of output and to exit.

    python3 scripts/bench-deploy-kvm.py [KEEP_BINARY] [RUNS]

KEEP_BINARY defaults to target/release/keep (cargo build --release -p keep-cli);
RUNS to 40. Starts its own `keep host serve` on 127.0.0.1 (plain HTTP, backends
process and kvm, insecure attester allowed by a dev policy). Needs /dev/kvm.
"""

import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEEP = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/keep")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 40
HELLO = os.path.join(ROOT, "tests/fixtures/hello.wasm")
TOKEN = "bench-token-0123456789"


def timed(cmd):
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    p.stdout.readline()
    first = time.perf_counter() - start
    p.stdout.read()
    code = p.wait()
    end = time.perf_counter() - start
    if code != 0:
        sys.exit(f"{cmd} exited {code}")
    return first * 1000, end * 1000


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    d = tempfile.mkdtemp(prefix="keep-bench-")
    cfg = os.path.join(d, "host.toml")
    with open(cfg, "w") as f:
        f.write(f'''listen = "127.0.0.1:0"
insecure_http = true
data_dir = "{d}/data"
backends = ["process", "kvm"]
max_keeps = 4
[limits]
memory = "512MiB"
[[tenant]]
name = "bench"
token = "{TOKEN}"
''')
    policy = os.path.join(d, "dev.toml")
    with open(policy, "w") as f:
        f.write("allow_insecure = true\n")
    # The agent logs to a file (a pipe nobody drains would stall it).
    log = open(os.path.join(d, "agent.log"), "w+")
    agent = subprocess.Popen([KEEP, "host", "serve", "--config", cfg],
                             stdout=subprocess.DEVNULL, stderr=log)
    url = None
    for _ in range(200):
        time.sleep(0.05)
        with open(log.name) as f:
            for line in f:
                if line.startswith("keep host: listening on "):
                    url = line.split()[4]
        if url:
            break
    if not url:
        sys.exit("the agent did not start")
    deploy = [KEEP, "deploy", "--host", url, "--token", TOKEN, "--policy", policy,
              "--no-stdin"]
    cases = [
        ("keep run --backend kvm hello.wasm (--memory 512MiB)",
         [KEEP, "run", "--backend", "kvm", "--memory", "512MiB", HELLO]),
        ("keep deploy --backend kvm hello.wasm", deploy + ["--backend", "kvm", HELLO]),
        ("keep run hello.wasm (process, compiled-code cache)", [KEEP, "run", HELLO]),
        ("keep deploy --backend process hello.wasm", deploy + ["--backend", "process", HELLO]),
    ]
    try:
        print("| command | first output p50 / p99 (ms) | exit p50 / p99 (ms) |")
        print("|---|---|---|")
        for name, cmd in cases:
            timed(cmd)  # warm-up
            firsts, ends = [], []
            for _ in range(RUNS):
                a, b = timed(cmd)
                firsts.append(a)
                ends.append(b)
            print(f"| `{name}` | {pct(firsts, .5):.1f} / {pct(firsts, .99):.1f} "
                  f"| {pct(ends, .5):.1f} / {pct(ends, .99):.1f} |", flush=True)
    finally:
        agent.terminate()
        agent.wait()


if __name__ == "__main__":
    main()
