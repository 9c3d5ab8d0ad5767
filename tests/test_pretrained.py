"""The shipped model in pretrained/: complete, small, loadable, the default, and it separates."""
import json

import numpy as np
import pytest

import audio
from conftest import ROOT, SHARED_DATA, needs_shared_data

PRETRAINED = ROOT / "pretrained"
pytestmark = pytest.mark.skipif(not (PRETRAINED / "config.json").exists(), reason="no pretrained/ model shipped")


# the size limits: the default model small (10 MB), the quality model each under 20 MB
SIZE_LIMITS_MB = {"fast": 10, "quality": 20}


@pytest.mark.parametrize("name", sorted(SIZE_LIMITS_MB))
def test_shipped_model_is_complete_small_and_documented(name):
    import runs
    folder = runs.SHIPPED_MODELS[name]
    if not (folder / "config.json").exists():
        pytest.skip(f"no {name} model shipped")
    assert runs.is_complete_run(folder)
    import h5py
    with h5py.File(folder / "best.weights.h5", "r") as f:
        assert "optimizer" not in f, "ship the model's weights only (bench/ship.py), not Adam's state"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= SIZE_LIMITS_MB[name] * 2 ** 20, f"{folder} is {size / 2 ** 20:.1f} MB (limit {SIZE_LIMITS_MB[name]} MB)"
    card = (folder / "MODEL_CARD.md").read_text()
    for must in ("MUSDB18", "MIR-1K", "academic", "python train.py", "SDR"):
        assert must in card
    config = json.loads((folder / "config.json").read_text())
    members = config.get("ensemble", {}).get("members", [config["args"]])
    assert all(m["base_filters"] <= 16 for m in members)
    import separation
    assert separation.current_export(folder, "onnx") is not None, f"python export.py {folder}"


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
