"""Shared fixtures: tiny MUSDB18-HQ-layout datasets built in temp dirs, and the caches made from them."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = ROOT.parent / "shared" / "data"
TINY_SR = 22050            # not 44.1 kHz, so the resampling path is exercised


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


@pytest.fixture
def rng():
    return np.random.default_rng(0)
