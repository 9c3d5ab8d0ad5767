import json

import numpy as np
import pytest

import audio
import evaluate
import scoring
import train
from cache import WindowStore, resolve_caches


def _signals(rng, n=audio.SAMPLE_RATE * 4):
    t = np.arange(n) / audio.SAMPLE_RATE
    vocal = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    acc = (0.2 * rng.standard_normal(n)).astype(np.float32)
    return vocal, acc


def test_perfect_estimate_scores_very_high(rng):
    vocal, acc = _signals(rng)
    scores = scoring.museval_song(vocal, acc, vocal.copy(), acc.copy())
    assert scores["vocals"]["SDR"] > 60 and scores["accompaniment"]["SDR"] > 60
    assert scores["vocals"]["SI-SDR"] > 60


def test_mixture_estimate_sits_near_input_snr(rng):
    vocal, acc = _signals(rng)
    mix = vocal + acc
    scores = scoring.museval_song(vocal, acc, mix, mix)
    input_snr = 10 * np.log10(np.sum(vocal ** 2) / np.sum(acc ** 2))
    assert abs(scores["vocals"]["SDR"] - input_snr) < 1.5
    assert scores["vocals"]["SDR"] < 10


def test_silent_frames_are_nan_not_a_crash(rng):
    vocal, acc = _signals(rng)
    vocal[: audio.SAMPLE_RATE * 2] = 0                 # first two 1 s frames silent
    estimate = vocal + 0.01 * acc
    scores = scoring.museval_song(vocal, acc, estimate, acc + vocal - estimate)
    assert scores["vocals"]["frames"] == 2 and np.isfinite(scores["vocals"]["SDR"])
    silent = scoring.museval_song(np.zeros_like(vocal), acc, np.zeros_like(vocal), acc)
    assert silent["vocals"]["SDR"] is None and silent["vocals"]["SI-SDR"] is None
    agg = scoring.aggregate_museval([{"name": "a", **scores}, {"name": "b", **silent}])
    assert agg["vocals_SDR_median"] == pytest.approx(scores["vocals"]["SDR"])


def test_mismatches_are_rejected_clearly(rng):
    vocal, acc = _signals(rng)
    stereo = np.stack([vocal, vocal], axis=1)
    with pytest.raises(ValueError, match="channel"):
        scoring.museval_song(vocal, acc, stereo, acc)
    with pytest.raises(ValueError, match="samples but the reference has"):
        scoring.museval_song(vocal, acc, vocal[:-100], acc)
    with pytest.raises(ValueError, match="channel"):
        scoring.si_sdr(vocal, stereo)


def _windows(n, rng, silent=()):
    mag = rng.random((n, 512, 128, 1)).astype(np.float32) * 5
    for i in silent:
        mag[i] = 0
    return mag


def test_paper_grouping_uses_full_windows_in_groups_of_five(rng):
    valid = np.array([128] * 6 + [40] + [128] * 6 + [17])     # 12 full windows, 2 partial
    mag, phase = _windows(len(valid), rng), rng.uniform(-np.pi, np.pi, (len(valid), 512, 128, 1))
    groups = list(scoring.paper_groups(mag, mag, phase, valid))
    assert len(groups) == 2                                   # 12 // 5; the remainder is dropped
    est, ref = groups[1]
    assert est.shape == (5, audio.WINDOW_SAMPLES)
    # group 2 = full windows 5..9 = indices 5, 7, 8, 9, 10 (index 6 is partial)
    expected = audio.reconstruct(mag[7, ..., 0], phase[7, ..., 0], audio.WINDOW_SAMPLES)
    np.testing.assert_allclose(ref[1], expected)


def test_paper_group_scoring_and_dropping(rng):
    segments = rng.standard_normal((5, 8000)) * 0.3
    good = scoring.paper_group_score((segments + 0.01 * rng.standard_normal(segments.shape), segments))
    assert len(good["SDR"]) == 5 and min(good["SDR"]) > 20 and min(good["SIR"]) > 10
    quiet = scoring.paper_group_score((segments, segments * 1e-6))
    assert quiet == {"dropped": "near-silent reference"}
    one_silent = segments.copy()
    one_silent[2] = 0
    assert "all-zero" in scoring.paper_group_score((segments, one_silent))["dropped"]


class _Identity:
    """A separator that returns the mixture: must score exactly like the mixture baseline."""
    def source_mags(self, mix_mag):
        return mix_mag.copy()


def test_separator_path_matches_mixture_baseline(tiny_cache):
    store = WindowStore(resolve_caches([tiny_cache], "test"))
    ours = scoring.estimates(store, _Identity())
    base = scoring.estimates(store, "mixture")
    np.testing.assert_array_equal(ours[0], base[0])
    a = scoring.score(store, *ours, "museval", 1)
    b = scoring.score(store, *base, "museval", 1)
    assert scoring.headline(a) == scoring.headline(b)
    # the mixture reconstructed from its windows is the stored mixture: accompaniment estimate ~ 0
    mix = store.read_wave("mix_wave", 0)
    assert np.max(np.abs(ours[1][0] - mix)) < 1e-4


def test_oracle_masks_beat_the_mixture(tiny_cache):
    store = WindowStore(resolve_caches([tiny_cache], "test"))
    sdr = {k: scoring.headline(scoring.score(store, *scoring.estimates(store, k), "museval", 1))["SDR"]
           for k in scoring.BASELINES}
    assert sdr["irm1"] > sdr["mixture"] + 5 and sdr["irm2"] > sdr["mixture"] + 5


@pytest.mark.slow
def test_evaluate_all_writes_tables_and_figures(tiny_cache, tmp_path):
    runs = tmp_path / "runs"
    train.main(["--data", str(tiny_cache), "--runs-root", str(runs), "--base-filters", "2", "--batch-size", "4",
                "--epochs", "1", "--steps-per-epoch", "1", "--verbose", "0", "--eager"])
    evaluate.main(["--all", "--runs-root", str(runs), "--out", str(tmp_path / "results"), "--jobs", "1"])
    out = tmp_path / "results"
    table = (out / "results_table.md").read_text()
    assert "museval protocol" in table and "paper protocol" in table
    assert "frequency | Min/Max | MAE" in table and "| 7.1 | 25.2 | 7.2 |" in table
    assert "oracle IRM2 (power ratio)" in table and "|V|" not in table and "mixture as estimate" in table
    assert "| SI-SDR | ISR |" in table
    assert "python evaluate.py --all" in table
    for name in ("results_table.csv", "results_table.tex", "normalization.png", "training_curves.png", "table1.png"):
        assert (out / name).exists(), name
    assert list(out.glob("spectrograms_*.png"))
    scores = json.loads((runs / "frequency-minmax-mae" / "scores_museval.json").read_text())
    assert len(scores["songs"]) == 2 and scores["test_fingerprint"]
    assert list((runs / "frequency-minmax-mae" / "estimates").glob("*.h5"))
    # re-scoring uses the cached estimates: no model is loaded
    import separation
    original = separation.WindowModel.from_run
    separation.WindowModel.from_run = None
    try:
        evaluate.main(["--run", str(runs / "frequency-minmax-mae"), "--jobs", "1"])
    finally:
        separation.WindowModel.from_run = original
    # the run's scores were archived: its rows stay in the tables once the run itself is gone
    assert (out / "scored" / "frequency-minmax-mae" / "scores_paper.json").exists()
    import shutil
    shutil.rmtree(runs / "frequency-minmax-mae")
    (out / "results_table.md").unlink()
    evaluate.main(["--all", "--runs-root", str(runs), "--out", str(out), "--jobs", "1"])
    assert "frequency | Min/Max | MAE" in (out / "results_table.md").read_text()


def test_griffin_lim_phase_and_isr_are_scored(tiny_run, tiny_cache, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    evaluate.main(["--run", str(run_dir), "--test-data", str(tiny_cache), "--jobs", "1", "--phase", "griffin-lim"])
    gl = json.loads((run_dir / "scores_museval_griffin-lim.json").read_text())
    assert gl["phase"] == "griffin-lim" and list((run_dir / "estimates").glob("*-griffin-lim.h5"))
    evaluate.main(["--run", str(run_dir), "--test-data", str(tiny_cache), "--jobs", "1"])
    mixture = json.loads((run_dir / "scores_museval.json").read_text())
    for scores in (gl, mixture):
        h = scoring.headline(scores)
        assert h["SDR"] is not None and np.isfinite(h["SDR"]) and h["ISR"] is not None and np.isfinite(h["ISR"])
    # the estimated phase changes the waveforms (not the magnitudes): different scores, same magnitude estimate
    assert scoring.headline(gl)["SDR"] != scoring.headline(mixture)["SDR"]


def test_evaluate_without_runs_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="train one first"):
        evaluate.main(["--all", "--runs-root", str(tmp_path), "--out", str(tmp_path / "results")])
