"""Weight averaging ("model soup"): one run whose weights are the mean of several runs' weights.

    python bench/soup.py RUN_A RUN_B [...] --out results/runs-select/soup-NAME
    python bench/ablation.py --runs results/runs-select/soup-NAME --sets valid test

Runs fine-tuned from one parent (siblings, or a run and its parent) often sit in one basin, where
their average can beat each of them at no cost at inference: the soup is the same model. Every
member must have the same architecture and output (same weight names and shapes). The soup is a
complete run folder: the first member's config.json with a "soup" entry naming the members (its
name and training history stay the first member's), and best.weights.h5 = the mean of the model's
weights (without optimizer state).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import runs  # noqa: E402


def soup(members: list[Path], out: Path, weights: str = "best") -> Path:
    """Write OUT/ (config.json, best.weights.h5) whose float weights are the members' mean.

    Args:
        members: complete run folders of one architecture.
        out: the new run folder (must not exist).
        weights: which weights of each member, "best" or "last".
    """
    import h5py
    import numpy as np
    files = [run / f"{weights}.weights.h5" for run in members]
    for run, path in zip(members, files):
        if not runs.is_complete_run(run) or not path.exists():
            raise SystemExit(f"soup: {run} is not a complete run with {path.name}")
    sources = [h5py.File(path, "r") for path in files]
    try:
        with runs.derived_run(out, "soup") as partial:
            # the model's weights only: members' Adam states differ
            runs.copy_model_weights(files[0], partial / "best.weights.h5")
            with h5py.File(partial / "best.weights.h5", "r+") as target:

                def average(_, node):
                    if isinstance(node, h5py.Dataset) and node.dtype.kind == "f":
                        key, stack = node.name.lstrip("/"), []          # e.g. layers/conv2d/vars/0
                        for run, source in zip(members, sources):
                            if key not in source or source[key].shape != node.shape:
                                raise SystemExit(f"soup: {run} has no weight {key} of shape {node.shape}: "
                                                 "members must share one architecture")
                            stack.append(source[key][...])
                        node[...] = np.mean(stack, axis=0)
                target["layers"].visititems(average)
            config = runs.derived_config(members[0])
            config["soup"] = {"members": [str(run) for run in members], "weights": weights}
            runs.write_json(partial / "config.json", config)
    finally:
        for source in sources:
            source.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("members", nargs="+", type=Path, help="complete run folders (two or more)")
    p.add_argument("--out", type=Path, required=True, help="the soup's run folder (new)")
    p.add_argument("--weights", choices=["best", "last"], default="best", help="which weights of each member")
    args = p.parse_args()
    if len(args.members) < 2:
        p.error("a soup needs two or more members")
    out = soup(args.members, args.out, args.weights)
    print(f"soup: mean of {len(args.members)} runs' {args.weights} weights -> {out}")


if __name__ == "__main__":
    main()
