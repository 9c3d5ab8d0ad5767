"""How much the quick start's demo model depends on its seed and precision, per recipe variant.

    python bench/demo_seeds.py                                   # the demo recipe, seeds 0-2, auto + float32
    python bench/demo_seeds.py --variant clipped="" --variant unclipped="--clipnorm 0"
    python bench/demo_seeds.py --data data/prepared --seeds 0 1 2 3 --precisions float32

Each run is the project's own commands, as a user would type them: `python train.py` with the recipe
(default: demo_data.DEMO_RECIPE, the quick start's), the variant's extra arguments (which win over the
recipe's), a seed and a precision; then `python evaluate.py --run` (museval). Vocals SDR / SIR are the
medians over the test songs. Complete, scored runs in --workdir are reused, so an interrupted study
continues. Writes a table per run and a min / median / max line per variant to --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, sep, extra = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME=\"EXTRA ARGS\" (the args may be empty)")
    return name, shlex.split(extra)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/demo_seeds"), help="runs (and the demo data) go here")
    p.add_argument("--data", type=Path, default=None,
                   help="prepared caches to train on (default: the built-in demo dataset, prepared in --workdir)")
    p.add_argument("--recipe", type=shlex.split, default=None, metavar='"ARGS"',
                   help="train.py arguments every run starts from, including --tag (default: demo_data.DEMO_RECIPE)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--precisions", nargs="+", default=["auto", "float32"],
                   help="train.py --precision values (auto = bfloat16 on CPUs with AMX or AVX512-BF16)")
    p.add_argument("--variant", type=parse_variant, action="append", default=None, metavar='NAME="ARGS"',
                   help='a recipe variant: extra train.py arguments after the recipe (repeatable; '
                        'default: the recipe as it is, "recipe=")')
    p.add_argument("--out", type=Path, default=ROOT / "results" / "demo_seeds.md")
    return p


def command(script: str, *args: str) -> None:
    """One project command in its own process (as typed in a shell); its failure stops the study."""
    argv = [sys.executable, str(ROOT / script), *args]
    if subprocess.run(argv, cwd=ROOT).returncode != 0:
        raise SystemExit(f"demo_seeds: failed: {shlex.join(argv)}")


def run_one(data: Path, runs_root: Path, recipe: list[str], tag: str, extra: list[str]) -> dict:
    """Train (unless a complete scored run exists) and score one run; its summary row."""
    import runs
    recipe = [*recipe, *extra, "--tag", tag]
    naming = argparse.ArgumentParser(add_help=False)            # the fields train.py names its run folder by
    for flag in ("--norm", "--scaler", "--loss", "--tag"):
        naming.add_argument(flag)
    run_dir = runs_root / runs.run_name(naming.parse_known_args(recipe)[0])
    scores_path, config_path = run_dir / "scores_museval.json", run_dir / "config.json"
    if not (config_path.exists() and json.loads(config_path.read_text()).get("status") == "complete"):
        command("train.py", "--data", str(data), "--runs-root", str(runs_root), *recipe, "--verbose", "0",
                *(["--force"] if run_dir.exists() else []))
        scores_path.unlink(missing_ok=True)
    if not scores_path.exists():
        command("evaluate.py", "--run", str(run_dir), "--protocol", "museval")
    config = json.loads(config_path.read_text())
    aggregate = json.loads(scores_path.read_text())["aggregate"]
    history = list(csv.DictReader((run_dir / "history.csv").open()))
    return {"run": run_dir.name, "SDR": aggregate["vocals_SDR_median"], "SIR": aggregate["vocals_SIR_median"],
            "precision": config["hardware"]["precision"], "seconds": config["results"].get("train_seconds"),
            "final_loss": float(history[-1]["loss"]) if history else None}


def main(argv=None) -> list[dict]:
    args = build_parser().parse_args(argv)
    import demo_data
    import hardware
    recipe = args.recipe or demo_data.DEMO_RECIPE
    variants = args.variant or [("recipe", [])]
    data = args.data
    if data is None:
        data = args.workdir / "prepared"
        if not (data / "test.h5").exists():
            command("data_prep.py", "--out", str(data), "--demo-root", str(args.workdir / "demo"))
    rows, started = [], time.time()
    jobs = [(name, extra, seed, precision) for name, extra in variants for seed in args.seeds
            for precision in args.precisions]
    for k, (name, extra, seed, precision) in enumerate(jobs, 1):
        tag = f"{name}-s{seed}-{precision}"
        print(f"demo_seeds: run {k}/{len(jobs)}: {tag}", file=sys.stderr, flush=True)
        row = run_one(data, args.workdir / "runs", recipe, tag, [*extra, "--seed", str(seed), "--precision", precision])
        rows.append({"variant": name, "extra": " ".join(extra), "seed": seed, **row})
    write(rows, args.out, hardware.describe(with_tensorflow=False),
          shlex.join(["python", "bench/demo_seeds.py", *(sys.argv[1:] if argv is None else argv)]))
    print(f"demo_seeds: {len(rows)} runs in {time.time() - started:.0f} s -> {args.out}")
    return rows


def write(rows: list[dict], out: Path, machine: str, command_line: str) -> None:
    import numpy as np
    lines = ["# The demo recipe over seeds and precisions\n", f"Command: `{command_line}`  ", f"Machine: {machine}\n",
             "| variant | extra arguments | seed | precision | vocals SDR | vocals SIR | final training loss | training s |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    for r in rows:
        extra = f"`{r['extra']}`" if r["extra"] else "(none)"
        lines.append(f"| {r['variant']} | {extra} | {r['seed']} | {r['precision']} | {r['SDR']:.2f} | "
                     f"{r['SIR']:.2f} | {fmt(r['final_loss'], '.2f')} | {fmt(r['seconds'], '.0f')} |")
    lines.append("")
    for name in dict.fromkeys(r["variant"] for r in rows):
        sdr = np.array([r["SDR"] for r in rows if r["variant"] == name])
        lines.append(f"- {name}: vocals SDR min {sdr.min():.2f} / median {np.median(sdr):.2f} / max {sdr.max():.2f} dB "
                     f"over {len(sdr)} runs")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
