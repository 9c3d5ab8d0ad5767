"""bench/stereo_cue.py: the side-channel share of a source's energy, and the interference bound."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("stereo_cue", ROOT / "bench" / "stereo_cue.py")
stereo_cue = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stereo_cue)


def test_side_share_of_centred_wide_and_one_sided_signals():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert stereo_cue.side_share(np.stack([x, x], axis=1)) == 0.0            # centred
    assert stereo_cue.side_share(np.stack([x, -x], axis=1)) == pytest.approx(1.0)
    assert stereo_cue.side_share(np.stack([x, 0 * x], axis=1)) == pytest.approx(0.5)   # hard left
    assert stereo_cue.side_share(np.zeros((10, 2), np.float32)) == 0.0         # silence


def test_interference_bound():
    assert stereo_cue.interference_bound_db(0.0) == 0.0
    assert stereo_cue.interference_bound_db(0.5) == pytest.approx(3.0103, abs=1e-3)
    assert stereo_cue.interference_bound_db(0.9) == pytest.approx(10.0)


def test_a_cache_without_stem_files_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "stereo_cue.py"), "--data", str(tmp_path / "none")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0
    assert out.stderr.strip().startswith("stereo_cue:") and len(out.stderr.strip().splitlines()) == 1
