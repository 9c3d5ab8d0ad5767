"""Model selection for the shipped model: short training runs of candidate settings, each scored
on the validation songs (the choice) and on the MUSDB18-7 test songs (reported, not chosen on).

    python bench/select_model.py                      # every candidate, table -> results/model_selection.md
    python bench/select_model.py --only masked-time-max-mae --steps 60 --epochs 8

Runs go to results/runs-select/<candidate> (skipped when complete), so the script can be rerun
after an interruption. Every figure in the table is read back from the runs' own files.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name -> train.py arguments that differ between candidates
CANDIDATES = {
    "direct-time-robust-mse": ["--target", "direct", "--norm", "time", "--scaler", "robust", "--loss", "mse"],
    "masked-time-max-mae": ["--target", "masked", "--norm", "time", "--scaler", "max", "--loss", "mae"],
    "mask-time-robust-mae": ["--target", "mask", "--norm", "time", "--scaler", "robust", "--loss", "mae"],
    "direct-frequency-robust-mse": ["--target", "direct", "--norm", "frequency", "--scaler", "robust", "--loss", "mse"],
    "direct-time-robust-mae": ["--target", "direct", "--norm", "time", "--scaler", "robust", "--loss", "mae"],
}


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), help="candidates to run (default: all)")
    p.add_argument("--data", nargs="+", default=["data/musdb18-7-remix"], help="training caches")
    p.add_argument("--test-data", default="data/musdb18-7", help="test cache scored with museval")
    p.add_argument("--base-filters", default="8", help="base filters unless a candidate sets its own")
    p.add_argument("--steps", default="60", help="batches per epoch")
    p.add_argument("--epochs", default="8")
    p.add_argument("--batch-size", default="16")
    p.add_argument("--precision", default="mixed_bfloat16")
    p.add_argument("--runs-root", default="results/runs-select")
    p.add_argument("--out", default="results/model_selection.md")
    args = p.parse_args()
    from common import print_machine
    print_machine()
    os.chdir(ROOT)          # relative paths in the commands and the table

    rows = []
    for name in args.only or CANDIDATES:
        extra = CANDIDATES[name]
        run_dir = Path(args.runs_root) / name
        common = ["--data", *args.data, "--steps-per-epoch", args.steps, "--epochs", args.epochs,
                  "--batch-size", args.batch_size, "--precision", args.precision, "--run-dir", str(run_dir)]
        if "--base-filters" not in extra:
            common += ["--base-filters", args.base_filters]
        run([sys.executable, "train.py", *extra, *common])
        scores = {}
        # validation songs choose (losses of different targets are not comparable); test is reported
        for split, data in (("valid", f"{args.test_data}/valid.h5"), ("test", f"{args.test_data}/test.h5")):
            run([sys.executable, "evaluate.py", "--run", str(run_dir), "--test-data", data])
            scores[split] = json.loads((run_dir / "scores_museval.json").read_text())["aggregate"]
            (run_dir / f"scores_museval_{split}.json").write_text(json.dumps(scores[split], indent=1))
        res = json.loads((run_dir / "config.json").read_text())["results"]
        rows.append((name, " ".join(extra + common[:-2]), res["best_val_loss"] / res["mixture_val_loss"],
                     res["best_epoch"], scores["valid"]["vocals_SDR_median"], scores["test"]["vocals_SDR_median"],
                     scores["test"]["vocals_SI-SDR_median"], scores["test"]["accompaniment_SDR_median"], res["train_seconds"]))

    lines = ["| candidate | val loss / mixture's | best epoch | **valid vocals SDR** | test vocals SDR "
             "| test vocals SI-SDR | test accomp. SDR | training s |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[2]:.3f} | {r[3]} | **{r[4]:.2f}** | {r[5]:.2f} | {r[6]:.2f} | {r[7]:.2f} | {r[8]:.0f} |"
              for r in rows]
    lines += ["", "Commands (train.py arguments per candidate):", ""]
    lines += [f"- {r[0]}: `python train.py {r[1]}`" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Model selection ({time.strftime('%Y-%m-%d')})\n\n"
                   f"museval protocol (median of song medians, dB) on the {args.test_data} "
                   f"validation songs (the choice) and test songs (reported only).\n\n" + text)


if __name__ == "__main__":
    main()
