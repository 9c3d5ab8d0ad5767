"""bench/paired.py: paired per-song comparison of two systems (bootstrap over songs, sign test), reading
the per-song values bench/compare.py and bench/ablation.py record."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("paired", ROOT / "bench" / "paired.py")
paired = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired)

SONGS = [f"song{i:02d}" for i in range(14)]


def scores(values) -> dict:
    return dict(zip(SONGS, map(float, values)))


def test_a_system_against_itself_is_no_difference():
    a = scores(np.random.default_rng(0).normal(6, 2, len(SONGS)))
    r = paired.paired_difference(a, a, n_boot=2000)
    assert r["median_difference"] == 0 and r["mean_bootstrap_90"] == [0.0, 0.0]
    assert (r["wins"], r["losses"], r["verdict"]) == (0, 0, "no clear difference")


def test_a_consistent_gain_is_found_and_a_noisy_one_is_not():
    rng = np.random.default_rng(1)
    base = rng.normal(6, 2, len(SONGS))
    better = paired.paired_difference(scores(base + 0.5 + rng.normal(0, 0.05, len(SONGS))), scores(base), n_boot=2000)
    assert better["verdict"] == "A better" and better["wins"] == len(SONGS) and better["mean_bootstrap_90"][0] > 0
    assert better["sign_test_p"] < 0.001
    worse = paired.paired_difference(scores(base), scores(base + 0.5), n_boot=2000)
    assert worse["verdict"] == "B better"
    # +0.1 dB on the median with 1 dB of song-to-song scatter: 14 songs cannot tell
    noisy = paired.paired_difference(scores(base + 0.1 + rng.normal(0, 1.0, len(SONGS))), scores(base), n_boot=2000)
    assert noisy["verdict"] == "no clear difference"
    assert noisy["mean_bootstrap_90"][0] < 0 < noisy["mean_bootstrap_90"][1]


def test_the_bootstrap_is_deterministic_and_only_shared_songs_count():
    rng = np.random.default_rng(2)
    a, b = scores(rng.normal(6, 2, len(SONGS))), scores(rng.normal(6, 2, len(SONGS)))
    assert paired.paired_difference(a, b) == paired.paired_difference(a, b)
    b_short = {k: v for k, v in b.items() if k != "song03"}
    r = paired.paired_difference(a, b_short)
    assert r["songs"] == len(SONGS) - 1 and r["only_a"] == ["song03"] and r["only_b"] == []
    with pytest.raises(ValueError, match="nothing to compare"):
        paired.paired_difference(a, {"other": 1.0})


def test_the_cli_reads_compare_and_ablation_files(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.normal(6, 2, len(SONGS))
    compare = {"run": "pretrained", "split": "valid", "rows": {
        "ours": {"songs": {"vocals_SDR": scores(base)}},
        "ours-wiener": {"songs": {"vocals_SDR": scores(base + 1 + rng.normal(0, 0.05, len(SONGS)))}}}}
    ablation = {"run-a|wiener0": {"scores": {"valid": {"SDR": 6.0, "songs": {"vocals_SDR": scores(base)}}}},
                "old|wiener0": {"scores": {"valid": {"SDR": 6.0}}}}
    (tmp_path / "c.json").write_text(json.dumps(compare))
    (tmp_path / "a.json").write_text(json.dumps(ablation))

    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "bench" / "paired.py"), *args], capture_output=True, text=True)
    out = run(f"{tmp_path}/c.json#ours-wiener", f"{tmp_path}/a.json#run-a|wiener0#valid")
    assert out.returncode == 0, out.stderr
    assert "A wins 14 songs, B 0" in out.stdout and out.stdout.strip().endswith("paired: A better")
    out = run(f"{tmp_path}/c.json#ours-wiener", f"{tmp_path}/c.json#ours", f"{tmp_path}/a.json#run-a|wiener0", f"{tmp_path}/c.json#ours-wiener")
    assert out.returncode == 0, out.stderr
    assert "pooled over 2 pairs:" in out.stdout and "over 28 songs" in out.stdout and "A wins 14 songs, B 14" in out.stdout
    assert run(f"{tmp_path}/c.json#ours", f"{tmp_path}/c.json#ours", f"{tmp_path}/c.json#ours").returncode == 2
    out = run(f"{tmp_path}/c.json#ours", f"{tmp_path}/a.json#old|wiener0")
    assert out.returncode != 0 and "no per-song vocals_SDR recorded" in out.stderr
    out = run(f"{tmp_path}/c.json#nope", f"{tmp_path}/c.json")
    assert out.returncode != 0 and "has no row 'nope'" in out.stderr


def test_per_song_values_leave_out_unscored_songs():
    import scoring
    scores = {"songs": [{"name": "a", "vocals": {"SDR": 5.0, "SIR": 1.0}, "accompaniment": {"SDR": 9.0}},
                        {"name": "silent", "vocals": {"SDR": None, "SIR": None}, "accompaniment": {"SDR": None}},
                        {"name": "b", "vocals": {"SDR": -1.5, "SIR": 2.0}, "accompaniment": {"SDR": 7.0}}]}
    assert scoring.song_values(scores) == {"a": 5.0, "b": -1.5}
    assert scoring.song_values(scores, "accompaniment", "SDR") == {"a": 9.0, "b": 7.0}
    assert scoring.per_song(scores) == {"vocals_SDR": {"a": 5.0, "b": -1.5}, "vocals_SIR": {"a": 1.0, "b": 2.0},
                                        "accompaniment_SDR": {"a": 9.0, "b": 7.0}}


def test_a_gain_on_the_second_set_alone_does_not_carry_the_pooled_verdict():
    pooled_better = {"verdict": "A better", "mean_difference": 0.14}
    assert paired.combined_verdict(pooled_better, {"mean_difference": -0.04}).startswith("no clear difference")
    assert paired.combined_verdict(pooled_better, {"mean_difference": 0.3}) == "A better"
    assert paired.combined_verdict({"verdict": "B better", "mean_difference": -0.2},
                                   {"mean_difference": 0.1}).startswith("no clear difference")
    assert paired.combined_verdict({"verdict": "no clear difference", "mean_difference": 0.0},
                                   {"mean_difference": -1.0}) == "no clear difference"
