"""Shared fixtures: tiny MUSDB18-HQ-layout datasets built in temp dirs, and the caches made from them."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = ROOT.parent / "shared" / "data"
TINY_SR = 22050            # not 44.1 kHz, so the resampling path is exercised

# README's test command (pytest-xdist, --dist loadfile) hands out whole files. xdist starts with the
# files that hold the most tests, which left the one-test quick start (minutes) to the end on one
# worker while the other idled: the longest files go first instead, the rest in name order.
LONGEST_FILES = ("test_quickstart.py", "test_train.py", "test_remix.py", "test_separate.py", "test_ensemble.py",
                 "test_demo_seeds.py", "test_backends.py", "test_distill.py", "test_soup.py")


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):           # pytest-xdist's test-count order
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))      # stable: each file keeps its order


def encode(wav: Path, out: Path, *codec: str) -> Path:
    """`wav` re-encoded by the ffmpeg program to `out` (format from its suffix, options in codec)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *codec, str(out)], check=True)
    return out


def model_weights(path: Path) -> dict:
    """A Keras .weights.h5 file's model variables by name (not the optimizer state it may also hold)."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f["layers"].visititems(lambda name, node: out.__setitem__(name, node[...])
                               if isinstance(node, h5py.Dataset) else None)
    return out


def needs_shared_data(sub: str):
    """Skip marker for tests that use ../shared/data (absent in a user's fresh clone)."""
    return pytest.mark.skipif(not (SHARED_DATA / sub).exists(), reason=f"../shared/data/{sub} not present")


def write_tiny_musdb(root: Path, n_train: int = 5, n_test: int = 2, seconds: float = 5.0) -> Path:
    import demo_data
    for subset, count, base in (("train", n_train, 0), ("test", n_test, 500)):
        for i in range(count):
            demo_data.write_song(root / subset / f"tiny-{subset}-{i}",
                                 demo_data.synth_song(base + i, seconds, TINY_SR), TINY_SR)
    return root


@pytest.fixture(scope="session")
def tiny_musdb(tmp_path_factory) -> Path:
    return write_tiny_musdb(tmp_path_factory.mktemp("tiny_musdb"))


@pytest.fixture(scope="session")
def tiny_cache(tiny_musdb, tmp_path_factory) -> Path:
    import data_prep
    out = tmp_path_factory.mktemp("tiny_cache")
    data_prep.main(["--musdb-root", str(tiny_musdb), "--wav", "--out", str(out), "--jobs", "1",
                    "--valid-fraction", "0.2"])
    return out


def train_tiny(tiny_cache: Path, run_dir: Path, *extra: str, eager: bool = True) -> Path:
    """A one-step base-2 run on the tiny cache in run_dir; extra train.py arguments override. Eager by
    default: tracing the training graph costs ~10 s, a few times what one eager step does."""
    import train
    train.main(["--data", str(tiny_cache), "--run-dir", str(run_dir), "--base-filters", "2", "--batch-size", "4",
                "--epochs", "1", "--steps-per-epoch", "1", "--verbose", "0", *(["--eager"] if eager else []), *extra])
    return run_dir


@pytest.fixture(scope="session")
def tiny_run(tiny_cache, tmp_path_factory) -> Path:
    """A one-step base-2 run: fast, and enough for anything that needs a model that loads."""
    return train_tiny(tiny_cache, tmp_path_factory.mktemp("sep_runs") / "run")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(run_dir: Path | list[Path], log_dir: Path, *extra: str):
    """app.py in a subprocess on a free port (1 MB / 15 s limits) offering the run(s); yields url, proc,
    work_dir, log."""
    port = _free_port()
    log = log_dir / "server.log"
    run_dirs = [str(d) for d in (run_dir if isinstance(run_dir, list) else [run_dir])]
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--run", *run_dirs, "--port", str(port),
                             "--max-mb", "1", "--max-minutes", "0.25", *extra], stderr=log.open("w"), cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.5)
    work_dir = Path(re.search(r"work files in (\S+)\)", log.read_text()).group(1))
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "port": port, "proc": proc, "work_dir": work_dir, "log": log}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
