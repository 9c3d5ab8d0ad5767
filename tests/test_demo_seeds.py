"""bench/demo_seeds.py: the demo recipe over seeds, precisions and variants, on the tiny cache."""
import argparse
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("demo_seeds", ROOT / "bench" / "demo_seeds.py")
demo_seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_seeds)

TINY_RECIPE = ("--norm time --scaler robust --loss mse --target masked --base-filters 2 --batch-size 4 --epochs 1 --eager "
               "--steps-per-epoch 1 --tag demo")


def test_variant_needs_a_name_and_an_equals_sign():
    assert demo_seeds.parse_variant('unclipped=--clipnorm 0') == ("unclipped", ["--clipnorm", "0"])
    assert demo_seeds.parse_variant("recipe=") == ("recipe", [])
    for bad in ("--clipnorm 0", "=--clipnorm 0"):
        with pytest.raises(argparse.ArgumentTypeError):
            demo_seeds.parse_variant(bad)


@pytest.mark.slow
def test_each_variant_seed_and_precision_is_a_scored_run_and_complete_runs_are_reused(tiny_cache, tmp_path):
    out = tmp_path / "demo_seeds.md"
    argv = ["--workdir", str(tmp_path), "--data", str(tiny_cache), "--recipe", TINY_RECIPE, "--seeds", "0",
            "--precisions", "float32",
            "--variant", "plain=", "--variant", "clipped=--clipnorm 1", "--out", str(out)]
    rows = demo_seeds.main(argv)
    assert [(r["variant"], r["seed"], r["precision"]) for r in rows] == [("plain", 0, "float32"),
                                                                         ("clipped", 0, "float32")]
    clipped = tmp_path / "runs" / "time-robust-mse-clipped-s0-float32"
    assert json.loads((clipped / "config.json").read_text())["args"]["clipnorm"] == 1.0
    text = out.read_text()
    assert "- plain: vocals SDR min" in text and "- clipped: vocals SDR min" in text
    assert "--recipe '--norm time" in text                                   # the command line, quoted as typed
    weights = clipped / "best.weights.h5"
    stamp = weights.stat().st_mtime_ns
    assert demo_seeds.main(argv)[1]["SDR"] == rows[1]["SDR"]                 # reused, not retrained
    assert weights.stat().st_mtime_ns == stamp
