"""The quality ablation (issue 16): score runs on the validation songs (the choice) and the test
songs (reported beside), each with the post-filters asked for, and write the table.

    python bench/ablation.py --runs results/runs/time-robust-mse-abl-r1-fixed ... --wiener 0 1 2

Results accumulate in results/ablation.json (one entry per run, post-filter and song set), so runs
can be added as they finish; results/ablation.md is rewritten from it each time, rows in the order
of the runs' training start. Every figure is museval (evaluate.py's protocol), median over songs.
"""
from __future__ import annotations

import argparse
import re
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import print_machine  # noqa: E402

import runs  # noqa: E402
import scoring  # noqa: E402
import targets  # noqa: E402

TWO_SOURCE_TARGETS = [t for t in targets.TARGETS if len(targets.sources(t)) == 2]
SETS = {"valid": "data/musdb18-7/valid.h5", "test": "data/musdb18-7/test.h5",
        "mir1k": "data/mir1k/test.h5",         # issue 16's MIR-1K target (the abjones/amy-trained split)
        "mir1k-valid": "data/mir1k/valid.h5"}  # 16 held-out MIR-1K clips: a second validation set (bench/paired.py)


COMMAND_ARGS = ("arch", "data", "online_remix", "remix_coherent", "remix_gain", "remix_stem_dropout", "target", "norm",
                "scaler", "loss", "base_filters", "batch_size", "epochs", "steps_per_epoch", "lr", "lr_schedule",
                "clipnorm", "freeze_batchnorm", "source_weight", "vocal_gain_db", "init_from", "teacher", "teacher_weight",
                "precision")
NO_TRAINING = {"bench/soup.py": "no training: the members' weights averaged",
               "bench/recalibrate_bn.py": "no training: one forward pass over the windows",
               "bench/ensemble.py": "no training: the members' outputs averaged"}
REMIX_ARGS = ("remix_coherent", "remix_gain", "remix_stem_dropout")


def train_command(args: dict) -> str:
    """The train.py line of a run's recorded args (the options the ablation varies; flags as flags,
    options at their off value, the default (paper) architecture and remix options of a run without
    remixing left out)."""
    parts = []
    for key, value in args.items():
        if key == "source_weight":            # repeatable SOURCE=COPIES pairs
            parts += [f"--source-weight {name}={copies}" for name, copies in value or []]
            continue
        if key not in COMMAND_ARGS or value in (None, False) or (key in ("clipnorm", "vocal_gain_db") and not value) or \
                (key in REMIX_ARGS and (not args.get("online_remix") or (key == "remix_coherent" and not value))) or \
                (key == "teacher_weight" and not args.get("teacher")) or (key == "arch" and value == "paper"):
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    return "python train.py " + " ".join(parts)


# songs data_prep.py makes from others: how a row names them
DERIVED_SONGS = {"remix": "offline remixes (data_prep.py --remix)", "speed": "speed copies (data_prep.py --speed)"}


def train_sources(config: dict) -> dict[str, int]:
    """Training songs per source (musdb, mir1k, remix, ...): recorded by train.py, or read from the
    run's caches for runs made before it recorded them ({} when those are gone)."""
    data = config["data"]
    if "train_sources" in data:
        return data["train_sources"]
    if not data["train"] or not all(Path(p).exists() for p in data["train"]):
        return {}
    from cache import WindowStore
    names, counts = np.unique(WindowStore(data["train"]).songs["source"], return_counts=True)
    return dict(zip(names.tolist(), counts.tolist()))


def describe(config: dict, run_dir: Path | None = None) -> dict:
    """What a run was trained on and to estimate, from its config.json (a soup's command is the
    bench/soup.py line that made it from run_dir's members)."""
    args, data = config["args"], config["data"]
    remix = data.get("online_remix")
    if remix:
        training = f"online remix, stems of {remix['songs']} songs ({remix['minutes']:.0f} min)"
    else:
        training = f"fixed windows, {data['train_songs']} songs ({data['train_windows']} windows), splice/blackout"
        derived = train_sources(config)
        for source, what in DERIVED_SONGS.items():
            if derived.get(source):
                training += f", {derived[source]} of them {what}"
        if args.get("source_weight"):
            training += ", " + ", ".join(f"{name} x{copies}" for name, copies in args["source_weight"])
        if args.get("vocal_gain_db"):
            training += f", vocal gain +-{args['vocal_gain_db']:g} dB"
    if config.get("init_from"):
        training += f"; fine-tuned from {config['init_from']['name']}"
    if config.get("teacher"):
        training += f"; taught by {config['teacher']['name']} (weight {config['teacher']['weight']:g})"
    if config.get("soup"):
        training += "; weights averaged with " + ", ".join(Path(m).name for m in config["soup"]["members"][1:])
    if config.get("ensemble"):
        training += "; outputs averaged with " + ", ".join(m["name"] for m in config["ensemble"]["members"][1:])
    recalibration = config.get("bn_recalibration")
    if recalibration:
        training += f"; BN statistics recomputed on {recalibration['windows']} windows of " + \
            ", ".join(recalibration["data"])
    return {"training": training, "target": args["target"], "loss": args["loss"], "base": args["base_filters"],
            "examples": config["results"]["completed_epochs"] * data["steps_per_epoch"] * args["batch_size"],
            "minutes": round(config["results"]["train_seconds"] / 60, 1),
            "command": made_by(config, run_dir)}


def made_by(config: dict, run_dir: Path | None) -> str:
    """The command that made a run: train.py, or the bench script that derived it from others."""
    if config.get("bn_recalibration"):
        info = config["bn_recalibration"]
        return (f"python bench/recalibrate_bn.py {info['run']} --data {' '.join(info['data'])} --out {run_dir}"
                + (" --weights last" if info["weights"] == "last" else ""))
    if config.get("soup"):
        return ("python bench/soup.py " + " ".join(config["soup"]["members"]) + f" --out {run_dir}"
                + (" --weights last" if config["soup"]["weights"] == "last" else ""))
    if config.get("ensemble"):
        return "python bench/ensemble.py " + " ".join(m["run"] for m in config["ensemble"]["members"]) + f" --out {run_dir}"
    return train_command(config["args"])


def score_run(run_dir: Path, test_data: str, wiener_iterations: int, jobs: int) -> dict:
    """museval scores of a run's best weights on one cache (evaluate.py's protocol and chain)."""
    from separation import WindowModel
    store = scoring.test_store([test_data])
    vocal_mag, waves = scoring.estimates(store, WindowModel.from_run(run_dir), None, "mixture", wiener_iterations)
    return scoring.score(store, vocal_mag, waves, "museval", jobs, run_dir.name)


def write_table(results: dict, path: Path) -> None:
    rows = sorted(results.values(), key=lambda r: (r["started"], r["wiener"]))
    lines = ["# Quality ablation (issue 16)", "",
             "museval on mono 11025 Hz (evaluate.py), median over songs, dB. **valid** = the 14 MUSDB18-7 "
             "validation songs (every choice is made on these), test = the 25 MUSDB18-7 test songs (reported, "
             "never chosen on), MIR-1K test = the MIR-1K clips of data/mir1k's test split (`--sets mir1k`, "
             "vocals SDR; reported, never chosen on; '-' where not scored), MIR-1K valid = the 16 held-out clips "
             "of data/mir1k's validation split (`--sets mir1k-valid`, a second validation set since session 13; "
             "bench/paired.py compares runs on them song by song). Equal training budgets unless the "
             "row says otherwise. "
             "Made by `python bench/ablation.py` (commands below the table).", "",
             "| run | training data | target | loss | post-filter | examples | valid SDR | valid SIR | test SDR | test SIR "
             "| test acc. SDR | MIR-1K test SDR | MIR-1K valid SDR |", "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        v, t, m, mv = (r["scores"].get(name, {}) for name in ("valid", "test", "mir1k", "mir1k-valid"))
        post = f"Wiener, {r['wiener']} it." if r["wiener"] else \
            ("soft masks" if r["target"] in TWO_SOURCE_TARGETS else "none (the paper's chain)")
        loss = r.get("loss") or (re.search(r"--loss (\w+)", r["command"]) or [None, "mse"])[1]
        def cell(scores: dict, key: str) -> str:
            return f"{scores[key]:.2f}" if key in scores else "-"      # "-": that song set not scored

        lines.append(f"| {r['run']} | {r['training']} | {r['target']} | {loss} | {post} | {r['examples']} | "
                     f"**{cell(v, 'SDR')}** | {cell(v, 'SIR')} | {cell(t, 'SDR')} | {cell(t, 'SIR')} | "
                     f"{cell(t, 'acc_SDR')} | {cell(m, 'SDR')} | {cell(mv, 'SDR')} |")
    lines += ["", "Commands:", ""]
    seen = set()
    for r in rows:
        if r["run"] not in seen:
            seen.add(r["run"])
            cost = NO_TRAINING.get(r["command"].split()[1], f"{r['minutes']} min on {r['device']}")
            lines.append(f"- {r['run']}: `{r['command']}` ({cost})")
    lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", type=Path, default=[], help="complete run folders to score")
    p.add_argument("--wiener", nargs="+", type=int, default=[0], help="post-filters to score (0 = soft masks)")
    p.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["valid", "test"])
    p.add_argument("--out", type=Path, default=Path("results/ablation"), help="OUT.json and OUT.md")
    p.add_argument("--jobs", type=int, default=2, help="songs scored in parallel")
    args = p.parse_args()
    print_machine()
    json_path = args.out.with_suffix(".json")
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    if not args.runs:                   # just rewrite the table from what was scored before
        write_table(results, args.out.with_suffix(".md"))
    for run_dir in args.runs:
        if not runs.is_complete_run(run_dir):
            raise SystemExit(f"ablation: {run_dir} is not a complete run")
        config = runs.read_config(run_dir)
        for wiener in args.wiener:
            key = f"{run_dir.name}|wiener{wiener}"
            entry = results.setdefault(key, {"run": run_dir.name, "wiener": wiener, "scores": {}})
            entry.update(describe(config, run_dir), started=config.get("started", ""),
                         device=config["hardware"].get("cpu", "?"))
            for name in args.sets:
                started = time.time()
                scores = score_run(run_dir, SETS[name], wiener, args.jobs)
                h = scoring.headline(scores)
                acc = scores["aggregate"].get("accompaniment_SDR_median")
                entry["scores"][name] = {"SDR": h["SDR"], "SIR": h["SIR"], "SAR": h["SAR"], "acc_SDR": acc,
                                         "songs": scoring.per_song(scores)}     # for bench/paired.py
                print(f"ablation: {run_dir.name} wiener {wiener} {name}: SDR {h['SDR']:.2f} SIR {h['SIR']:.2f} "
                      f"acc SDR {acc:.2f} ({time.time() - started:.0f} s)", flush=True)
                runs.write_json(json_path, results)
                write_table(results, args.out.with_suffix(".md"))
    print(f"ablation: {len(results)} rows -> {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
