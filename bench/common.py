"""Helpers shared by the benchmarks."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def print_machine() -> None:
    """The header every benchmark prints first: figures differ several-fold between CPU kinds
    (AMD EPYC with AVX2 only vs Intel with AMX), so each figure names the machine that made it."""
    import hardware
    hardware.configure_tensorflow()
    print(f"bench: {hardware.describe()}", flush=True)
# Runs a command and prints the peak RSS (kB) of the largest process in its tree.
_RSS_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")


def run_script(script: str, args: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Run ROOT/script in a fresh Python (with `env`, default this one's): (wall seconds, peak RSS in
    MB, its stdout without the RSS line)."""
    started = time.time()
    out = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, sys.executable, str(ROOT / script), *args],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.time() - started
    if out.returncode != 0:
        raise SystemExit(f"{script} failed:\n{out.stderr[-3000:]}")
    lines = out.stdout.strip().splitlines()
    return wall, int(lines[-1]) // 1024, "\n".join(lines[:-1])


def run_and_exit(main) -> None:
    """Run a benchmark's main() and leave with its status through os._exit: the reader threads of a
    drained endless tf.data pipeline can keep the interpreter from exiting, after an error too (a
    failed batch then hung the benchmark with nothing printed)."""
    import os
    import traceback
    code = 0
    try:
        main()
    except SystemExit as exc:                       # argparse errors and --help
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
