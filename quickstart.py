"""The first run on a fresh machine: demo data, a demo model that separates, its scores, a real song.

    python quickstart.py                      # data/, results/runs/, results/, separated/ in this checkout
    python quickstart.py --workdir /tmp/qs    # everything under one folder instead

Four steps, each the project's own command:
    1. data_prep.py          the built-in demo dataset -> HDF5 caches
    2. train.py              the demo recipe (demo_data.DEMO_RECIPE: small enough for 2 CPU cores in minutes)
    3. evaluate.py --all     museval scores of every complete run -> results/results_table.md
    4. separate.py           a real MUSDB18 excerpt (the one shipped inside the stempeg package),
                             separated by the shipped model in pretrained/
and a summary of what was written where, with the time each step took.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import hardware
from demo_data import DEMO_RECIPE       # the recipe lives with the data it was chosen on

ROOT = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Quick start: demo data -> demo model -> scores -> a real song separated.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", type=Path, default=None,
                   help="put data/, runs/, results/ and separated/ under this folder (default: this checkout's "
                        "data/, results/runs/, results/ and separated/)")
    p.add_argument("--skip-training", action="store_true", help="reuse a complete demo run instead of training")
    return p


def _step(number: int, text: str) -> float:
    print(f"\nquickstart: step {number}/4: {text}", file=sys.stderr, flush=True)
    return time.time()


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    hardware.configure_tensorflow()
    work = args.workdir
    data = (work or Path("data")) / "prepared"
    demo_root = (work or Path("data")) / "demo"
    runs_root = work / "runs" if work else ROOT / "results" / "runs"
    results = work / "results" if work else ROOT / "results"
    separated = (work or Path(".")) / "separated"
    started = time.time()
    print(f"quickstart: {hardware.describe(with_tensorflow=False)}", file=sys.stderr)
    timings = {}

    import data_prep
    t0 = _step(1, "the built-in demo dataset (24 + 6 synthetic songs and one real excerpt)")
    data_prep.main(["--out", str(data), "--demo-root", str(demo_root)])
    timings["data"] = time.time() - t0

    import train
    t0 = _step(2, f"training the demo model: python train.py {' '.join(DEMO_RECIPE)}")
    run_dir = runs_root / "time-robust-mse-demo"
    train_args = ["--data", str(data), "--runs-root", str(runs_root), *DEMO_RECIPE]
    if not args.skip_training:
        train.main(train_args)
    timings["train"] = time.time() - t0

    import evaluate
    t0 = _step(3, "scoring every complete run on its test songs (museval protocol) and writing the results table")
    evaluate.main(["--all", "--runs-root", str(runs_root), "--out", str(results), "--protocol", "museval"])
    scores = json.loads((run_dir / "scores_museval.json").read_text())["aggregate"]
    timings["evaluate"] = time.time() - t0

    import separate
    import stempeg
    t0 = _step(4, "a real song excerpt separated by the shipped model")
    excerpt = Path(stempeg.example_stem_path())
    separate.main([str(excerpt), "--out", str(separated)])
    stems = {s: separated / excerpt.stem / f"{s}.wav" for s in ("vocals", "accompaniment")}
    timings["separate"] = time.time() - t0

    total = time.time() - started
    print(f"\nquickstart: demo model {run_dir}: vocals SDR {scores['vocals_SDR_median']:.1f} dB, SIR "
          f"{scores['vocals_SIR_median']:.1f} dB on {scores['songs']} demo test songs (museval; predicting "
          f"silence scores 0.0, the mixture itself about -7.5)")
    print(f"quickstart: results table {results / 'results_table.md'}")
    print(f"quickstart: real excerpt '{excerpt.name}' separated by pretrained/: {stems['vocals']}, "
          f"{stems['accompaniment']}")
    print(f"quickstart: done in {total:.0f} s (data {timings['data']:.0f} s, training {timings['train']:.0f} s, "
          f"scoring {timings['evaluate']:.0f} s, separating {timings['separate']:.0f} s). Next: README's Real data "
          f"section (MUSDB18) or python separate.py your_song.mp3")
    return {"run_dir": run_dir, "scores": scores, "stems": stems, "seconds": total, "timings": timings}


if __name__ == "__main__":
    main()
