"""Validation loss per epoch of several runs on one figure: stages that differ in one change, side by side.

    python bench/curves.py results/runs-select/time-robust-sdr-final-v5-long \
        results/runs-select/time-robust-sdr-final-v5-frozenbn --out results/stage_curves.png --ylim -7 -4

Each run's history.csv (written by train.py every epoch, so an interrupted run shows the epochs it
finished); the best epoch of each run is marked, and a table of best / mean validation loss is printed.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import runs  # noqa: E402


def read_history(run_dir: Path) -> list[dict]:
    """The rows of RUN/history.csv as floats (epoch 1-based)."""
    path = run_dir / "history.csv"
    if not path.exists():
        raise SystemExit(f"curves: {path}: no such file; is {run_dir} a train.py run folder?")
    with path.open() as f:
        rows = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    for row in rows:
        row["epoch"] = row["epoch"] + 1
    return rows


def label(run_dir: Path) -> str:
    """The run's tag (what train.py --tag named it), else its folder name."""
    try:
        return runs.read_config(run_dir)["args"].get("tag") or run_dir.name
    except runs.RunError:
        return run_dir.name


def plot(run_dirs: list[Path], out: Path, title: str,
         ylim: tuple[float, float] | None = None) -> list[tuple[str, int, float, float, int]]:
    """Write the figure; returns (label, best epoch, best validation loss, mean, epochs) per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    summary = []
    fig, ax = plt.subplots(figsize=(9, 5))
    for run_dir in run_dirs:
        rows = read_history(run_dir)
        if not rows:
            raise SystemExit(f"curves: {run_dir}/history.csv has no finished epoch")
        epochs = [r["epoch"] for r in rows]
        val = [r["val_loss"] for r in rows]
        best = min(range(len(val)), key=val.__getitem__)
        name = label(run_dir)
        line, = ax.plot(epochs, val, marker=".", label=f"{name} (best {val[best]:.2f} at {epochs[best]:.0f})")
        ax.plot([epochs[best]], [val[best]], marker="*", markersize=14, color=line.get_color())
        summary.append((name, int(epochs[best]), val[best], sum(val) / len(val), len(val)))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (lower is better)")
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with history.csv)")
    p.add_argument("--out", type=Path, default=Path("results/stage_curves.png"), help="the figure")
    p.add_argument("--title", default="validation loss per epoch", help="the figure's title")
    p.add_argument("--ylim", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="the loss axis' range (points beyond it are cut off; the printed table has them all)")
    args = p.parse_args()
    summary = plot(args.runs, args.out, args.title, args.ylim)
    print(f"{'run':40s} {'epochs':>6s} {'best':>7s} {'at':>4s} {'mean':>7s}")
    for name, best_epoch, best, mean, n in summary:
        print(f"{name:40s} {n:6d} {best:7.2f} {best_epoch:4d} {mean:7.2f}")
    print(f"curves: {len(summary)} runs -> {args.out}")


if __name__ == "__main__":
    main()
