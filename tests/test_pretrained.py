"""The shipped model in pretrained/: complete, small, loadable, the default, and it separates."""
import json

import numpy as np
import pytest

import audio
from conftest import ROOT, SHARED_DATA, needs_shared_data

PRETRAINED = ROOT / "pretrained"
pytestmark = pytest.mark.skipif(not (PRETRAINED / "config.json").exists(), reason="no pretrained/ model shipped")


def test_shipped_model_is_complete_small_and_documented():
    import runs
    assert runs.is_complete_run(PRETRAINED)
    import h5py
    with h5py.File(PRETRAINED / "best.weights.h5", "r") as f:
        assert "optimizer" not in f, "ship the model's weights only (load_run + save_weights), not Adam's state"
    size = sum(p.stat().st_size for p in PRETRAINED.iterdir() if p.is_file())
    assert size <= 10 * 2 ** 20, f"pretrained/ is {size / 2 ** 20:.1f} MB (limit 10 MB)"
    card = (PRETRAINED / "MODEL_CARD.md").read_text()
    for must in ("MUSDB18", "MIR-1K", "academic", "python train.py", "SDR"):
        assert must in card
    config = json.loads((PRETRAINED / "config.json").read_text())
    assert config["args"]["base_filters"] <= 16


def test_separate_and_app_use_it_by_default():
    import runs
    assert runs.default_run() == PRETRAINED


@pytest.mark.slow
@needs_shared_data("musdb18-7")
def test_shipped_model_separates_real_songs():
    """On 3 MUSDB18-7 test songs the vocal estimate beats the mixture-as-estimate by a wide margin."""
    import scoring
    from separation import SongSeparator, WindowModel
    song_separator = SongSeparator(WindowModel.from_run(PRETRAINED), band="paper")
    songs = sorted((SHARED_DATA / "musdb18-7" / "test").glob("*.stem.mp4"))[:3]
    gains = []
    for song in songs:
        (mix, vocals), _, _ = audio.decode_mixdowns(song, [[0], [4]])
        estimate = song_separator.separate_chunk(mix[:, None], audio.SAMPLE_RATE)[:, 0]
        assert len(estimate) == len(mix) and np.all(np.isfinite(estimate))
        gains.append(scoring.si_sdr(vocals, estimate) - scoring.si_sdr(vocals, mix))
    assert np.median(gains) > 5.0, f"SI-SDR gain over the mixture per song: {gains}"
