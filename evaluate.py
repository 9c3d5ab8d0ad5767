"""Score trained runs and regenerate Table I, under the paper's protocol and the field's standard one.

    python evaluate.py --run results/runs/frequency-minmax-mae       # one run, museval protocol
    python evaluate.py --all                                         # every run: tables + figures
    python evaluate.py --all --test-data data/musdb18-7              # score every run on one test set

Protocols (scoring.py):
    museval (default)  BSSEval v4 on vocals and accompaniment (= mixture - vocals) against the true
                       stems, mono 11025 Hz, 1 s frames; median over frames, then songs; plus SI-SDR.
                       Comparable with published MUSDB18 numbers only up to the mono 11025 Hz domain.
    paper              the released code's scoring (5-window groups scored as 5 "sources"): the
                       numbers to hold against the paper's 7.1 / 25.2 / 7.2, and not comparable
                       with anything else (SIR measures leakage between unrelated segments).
Baselines on the same songs and protocol: the mixture as the estimate, and the oracle ideal
ratio masks IRM1 (|V| / (|V| + |A|)) and IRM2 (power) at the paper's STFT.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

import hardware
import runs
from cache import CacheError
from normalize import SCALER_LABELS
from scoring import METRICS, PROTOCOLS, estimates, evaluate_baselines, headline, score, test_store

ROOT = Path(__file__).resolve().parent
# Table I of the paper (its own protocol, full MUSDB18 test set): SDR, SIR, SAR, axis, scaler, loss.
PAPER_TABLE = [
    (7.1, 25.2, 7.2, "frequency", "minmax", "mae"), (7.1, 25.1, 7.2, "time", "minmax", "mae"),
    (6.7, 24.8, 6.8, "frequency", "minmax", "mse"), (5.7, 23.9, 5.8, "time", "robust", "mae"),
    (5.6, 23.3, 5.7, "time", "minmax", "mse"), (4.8, 22.6, 4.9, "time", "robust", "mse"),
    (-0.9, 16.6, -0.6, "frequency", "robust", "mse"), (-2.1, 15.8, -1.8, "frequency", "robust", "mae"),
]


# ---------------------------------------------------------------- runs
def weights_key(run_dir: Path) -> str:
    stat = runs.weights_file(run_dir).stat()
    return hashlib.sha1(f"{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest()[:10]


def variant(phase: str = "mixture", wiener_iterations: int = 0) -> list[str]:
    """What sets a scoring apart from the paper's chain: ["griffin-lim"], ["wiener2"], both or none."""
    return ([phase] if phase != "mixture" else []) + ([f"wiener{wiener_iterations}"] if wiener_iterations else [])


def scores_name(protocol: str, phase: str = "mixture", wiener_iterations: int = 0) -> str:
    """scores_<protocol>.json, or e.g. scores_<protocol>_griffin-lim.json / _wiener1.json for a variant."""
    return "_".join([f"scores_{protocol}", *variant(phase, wiener_iterations)]) + ".json"


def evaluate_run(run_dir: Path, test_data: list[str] | None, protocols: list[str], jobs: int,
                 phase: str = "mixture", wiener_iterations: int = 0):
    """Score one run; writes run_dir/scores_<protocol>[_<phase>].json. Returns ({protocol: scores}, test store).

    phase "griffin-lim" reconstructs the vocal waves with Griffin-Lim instead of the mixture's phase
    (museval protocol; the paper protocol scores magnitudes with the mixture's phase by definition).
    wiener_iterations > 0 filters with norbert's Wiener filter (separation.vocal_spectrum).
    """
    from separation import WindowModel
    run_dir = Path(run_dir)
    data = test_data or list(runs.settings(run_dir).data)
    store = test_store(data)
    suffix = "".join(f"-{v}" for v in variant(phase, wiener_iterations))
    cache = run_dir / "estimates" / f"{store.fingerprint()}-{weights_key(run_dir)}{suffix}.h5"
    separator = None if cache.exists() else WindowModel.from_run(run_dir)
    vocal_mag, waves = estimates(store, separator, cache, phase, wiener_iterations)
    out = {}
    for protocol in protocols:
        scores = score(store, vocal_mag, waves, protocol, jobs, run_dir.name)
        scores.update({"run": run_dir.name, "test_data": [str(p) for p in store.paths],
                       "test_fingerprint": store.fingerprint(), "weights": "best.weights.h5", "phase": phase,
                       "wiener_iterations": wiener_iterations,
                       "evaluated": time.strftime("%Y-%m-%d %H:%M:%S")})
        (run_dir / scores_name(protocol, phase, wiener_iterations)).write_text(json.dumps(scores, indent=1))
        out[protocol] = scores
    return out, store


# ---------------------------------------------------------------- archived runs
ARCHIVE_FILES = ("config.json", "history.csv")


def archive_run(run_dir: Path, archive: Path) -> Path:
    """Copy a scored run's config, history and scores (not its weights) to archive/<run>/, so the
    tables keep its rows on a clone without the run (weights too large to commit, a GPU lease gone)."""
    import shutil
    dest = archive / run_dir.name
    dest.mkdir(parents=True, exist_ok=True)
    for path in [*(run_dir / n for n in ARCHIVE_FILES), *run_dir.glob("scores_*.json")]:
        if path.exists():
            shutil.copy2(path, dest / path.name)
    return dest


def archived_runs(archive: Path, live_names: set[str], protocols: list[str], phase: str,
                  wiener_iterations: int) -> list[dict]:
    """Archived runs not among the live ones, with the scores of this scoring variant."""
    found = []
    for run_dir in sorted(d for d in archive.glob("*") if (d / "config.json").exists()):
        if run_dir.name in live_names:
            continue
        scores = {proto: json.loads((run_dir / scores_name(proto, phase, wiener_iterations)).read_text())
                  for proto in protocols if (run_dir / scores_name(proto, phase, wiener_iterations)).exists()}
        if scores:
            found.append({"name": run_dir.name, "dir": run_dir, "config": runs.read_config(run_dir),
                          "scores": scores, "archived": True})
    return found


def _here(path: str) -> str:
    """A cache path as recorded on another machine, found under this checkout's data/ if moved."""
    parts = Path(path).parts
    if Path(path).exists() or "data" not in parts:
        return path
    return str(ROOT.joinpath(*parts[len(parts) - 1 - parts[::-1].index("data"):]))


def add_archived(groups: dict[str, dict], archived: list[dict]) -> None:
    """Put archived runs into the group of their test set (built from their test_data if no live run has it)."""
    for run in archived:
        first = next(iter(run["scores"].values()))
        fingerprint = first.get("test_fingerprint")
        if fingerprint not in groups:
            try:
                store = test_store([_here(path) for path in first.get("test_data", [])])
            except (CacheError, SystemExit, OSError):
                store = None
            if store is None or store.fingerprint() != fingerprint:
                print(f"evaluate: archived run {run['name']}: its test set ({', '.join(first.get('test_data', []))}) "
                      "is not here as it was scored; left out of the tables", flush=True)
                continue
            groups[fingerprint] = {"label": dataset_label(store), "runs": [], "store": store}
        groups[fingerprint]["runs"].append(run)


# ---------------------------------------------------------------- tables and figures
def paper_row(norm: str, scaler: str, loss: str):
    return next((r[:3] for r in PAPER_TABLE if r[3:] == (norm, scaler, loss)), None)


def fmt(x, bold=False) -> str:
    if x is None:
        return "n/a"
    text = f"{x:.1f}"
    return f"**{text}**" if bold else text


def table_rows(scored_runs: list[dict], protocol: str) -> list[dict]:
    rows = []
    for run in scored_runs:
        if protocol not in run["scores"]:
            continue
        s = runs.RunSettings.from_config(run["config"], run["name"])
        h = headline(run["scores"][protocol])
        phase = run["scores"][protocol].get("phase", "mixture")
        rows.append({**h, "run": run["name"], "norm": s.norm, "scaler": s.scaler, "loss": s.loss,
                     "model": s.model_label + ("" if phase == "mixture" else f", {phase} phase"), "epochs": run["config"].get("results", {}).get("completed_epochs"),
                     "paper": paper_row(s.norm, s.scaler, s.loss)})
    return sorted(rows, key=lambda r: -np.inf if r["SDR"] is None else -r["SDR"])


def dataset_label(store) -> str:
    names = ", ".join(sorted({f"{p.parent.name}/{p.stem}" for p in store.paths}))
    sources = sorted(set(store.songs["source"]))
    return f"{names}: {store.n_songs} songs ({', '.join(sources)})"


def write_tables(groups: list[dict], out: Path, command: str) -> list[Path]:
    """results_table.md / .csv / .tex: one table per (test set, protocol), best bold, paper beside."""
    import csv
    md = ["# Table I, regenerated", "",
          f"Regenerate with `{command}`. Vocals SDR / SIR / SAR in dB. "
          "*paper* columns: the paper's own Table I (its protocol, full MUSDB18 test set) for the same "
          "configuration; only the **paper protocol** table is meant to be compared with them.", ""]
    csv_rows = []
    tex = []
    for group in groups:
        for protocol in PROTOCOLS:
            rows = table_rows(group["runs"], protocol)
            base = {k: v for k, v in group["baselines"].items() if k[1] == protocol}
            if not rows and not base:
                continue
            title = ("paper protocol (released code: 5-window groups as sources, mean over segments)"
                     if protocol == "paper" else
                     "museval protocol (BSSEval v4, 1 s frames, median over frames then songs; mono 11025 Hz)")
            md += [f"## {group['label']}: {title}", ""]
            extra = " | SI-SDR | ISR" if protocol == "museval" else ""
            md += [f"| SDR | SIR | SAR | Normalization | Scaler | Loss | model | epochs{extra} | paper SDR | paper SIR | paper SAR |",
                   "|---:|---:|---:|---|---|---|---|---:|" + ("---:|---:|" if extra else "") + "---:|---:|---:|"]
            best = {m: max((r[m] for r in rows if r[m] is not None), default=None) for m in METRICS}
            for r in rows:
                cells = [fmt(r[m], r[m] is not None and r[m] == best[m]) for m in METRICS]
                cells += [r["norm"], SCALER_LABELS[r["scaler"]], r["loss"].upper(), r["model"], str(r["epochs"])]
                if extra:
                    cells += [fmt(r["SI-SDR"]), fmt(r["ISR"])]
                cells += [fmt(x) for x in (r["paper"] or (None, None, None))]
                md.append("| " + " | ".join(cells) + " |")
                csv_rows.append({"dataset": group["label"], "protocol": protocol, "run": r["run"],
                                 **{m: r[m] for m in METRICS}, "norm": r["norm"], "scaler": r["scaler"],
                                 "loss": r["loss"], "model": r["model"], "epochs": r["epochs"]})
                tex.append(" & ".join([fmt(r[m]) for m in METRICS] + [r["norm"], SCALER_LABELS[r["scaler"]],
                                                                      r["loss"].upper()]) + r" \\")
            for (kind, _), scores in sorted(base.items()):
                h = headline(scores)
                label = {"mixture": "mixture as estimate", "irm1": "oracle IRM1 (magnitude ratio)",
                         "irm2": "oracle IRM2 (power ratio)"}[kind]
                cells = [fmt(h[m]) for m in METRICS] + ["", "", "", f"*baseline: {label}*", ""]
                if extra:
                    cells += [fmt(h.get("SI-SDR")), fmt(h.get("ISR"))]
                md.append("| " + " | ".join(cells + ["", "", ""]) + " |")
                csv_rows.append({"dataset": group["label"], "protocol": protocol, "run": f"baseline:{kind}",
                                 **{m: h[m] for m in METRICS}})
            md.append("")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results_table.md", out / "results_table.csv", out / "results_table.tex"]
    paths[0].write_text("\n".join(md) + "\n")
    with paths[1].open("w", newline="") as f:
        fields = ["dataset", "protocol", "run", *METRICS, "norm", "scaler", "loss", "model", "epochs"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(csv_rows)
    paths[2].write_text("\\begin{tabular}{rrrlll}\n\\hline\nSDR & SIR & SAR & Normalization & Scaler & Loss \\\\\n"
                        "\\hline\n" + "\n".join(tex) + "\n\\hline\n\\end{tabular}\n")
    return paths


def plot_table(groups: list[dict], path: Path) -> Path | None:
    """Table I as a picture: vocals SDR per configuration (norm / scaler / loss), one bar per model and
    training length, one panel per (test set, protocol); the paper's own value as a mark on the
    paper-protocol panels, so that 'how far from the paper, and does training longer close it' is
    seen at a glance. None when no run was scored."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [(group["label"], protocol, table_rows(group["runs"], protocol))
              for group in groups for protocol in PROTOCOLS]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.5), squeeze=False)
    for ax, (label, protocol, rows) in zip(axes[0], panels):
        configs = sorted({(r["norm"], r["scaler"], r["loss"]) for r in rows})
        variants = sorted({(r["model"], r["epochs"] or 0) for r in rows}, key=lambda v: (v[0], v[1]))
        height = 0.8 / len(variants)
        for k, variant in enumerate(variants):
            by_config = {(r["norm"], r["scaler"], r["loss"]): r["SDR"] for r in rows
                         if (r["model"], r["epochs"] or 0) == variant and r["SDR"] is not None}
            ys = [i + (k - (len(variants) - 1) / 2) * height for i, c in enumerate(configs) if c in by_config]
            ax.barh(ys, [by_config[c] for c in configs if c in by_config], height,
                    label=f"{variant[0]}, {variant[1]} epochs")
        if protocol == "paper":
            marks = [(i, paper_row(*c)[0]) for i, c in enumerate(configs) if paper_row(*c)]
            ax.plot([m[1] for m in marks], [m[0] for m in marks], "k*", markersize=10, label="the paper's Table I")
        ax.set_yticks(range(len(configs)))
        ax.set_yticklabels([f"{n} / {SCALER_LABELS[sc]} / {lo.upper()}" for n, sc, lo in configs])
        ax.invert_yaxis()
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_xlabel("vocals SDR (dB)")
        ax.set_title(f"{protocol} protocol\n{label}", fontsize=9)
    legend = {}
    for ax in axes[0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", ncol=min(4, len(legend)), fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_spectrograms(run_dir: Path, store, path: Path) -> Path:
    """Mixture / true vocal / predicted vocal of a test excerpt, like the paper's figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from separation import WindowModel
    song = int(np.argmax([np.sum(store.read_song("vocal_mag", s)) for s in range(store.n_songs)]))
    window = int(np.argmax(store.read_song("vocal_mag", song).sum(axis=(1, 2, 3))))
    mix = store.read_song("mix_mag", song)[window:window + 1]
    vocal = store.read_song("vocal_mag", song)[window]
    predicted = WindowModel.from_run(run_dir).vocal_mag(mix)[0]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    vmax = np.log1p(mix).max()
    for ax, (title, mag) in zip(axes, (("mixture", mix[0]), ("true vocal", vocal), ("predicted vocal", predicted))):
        ax.imshow(np.log1p(mag[..., 0]), origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(title)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("frequency bin")
    fig.suptitle(f"{store.songs['name'][song]}, window {window} ({run_dir.name})")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_normalization(path: Path) -> Path:
    """Figures 4-6 of the paper on a small integer example: min/max and robust, per axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import normalize
    example = np.array([[1, 3, 0, 7, 2, 9], [4, 4, 8, 1, 0, 2], [6, 2, 5, 3, 9, 1], [0, 7, 2, 2, 4, 8],
                        [3, 1, 6, 9, 5, 0]], dtype=np.float32)
    x = example[None, :, :, None]            # (1, bins, frames, 1): rows = frequency bins
    panels = [("input (rows = frequency bins)", example)]
    for scaler in normalize.TABLE_SCALERS:
        for axis in normalize.AXES:
            y = normalize.transform(x, normalize.fit(x, axis, scaler))[0, ..., 0]
            panels.append((f"{SCALER_LABELS[scaler]}, {axis} axis", y))
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
    for ax, (title, m) in zip(axes, panels):
        ax.imshow(m, cmap="viridis", origin="lower")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", color="w", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("bin")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- CLI
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, nargs="*", default=[], help="run directories to score")
    p.add_argument("--all", action="store_true", help="score every complete run under --runs-root and "
                                                      "write the tables and figures")
    p.add_argument("--runs-root", type=Path, default=runs.RUNS_ROOT, help="where train.py wrote runs")
    p.add_argument("--test-data", nargs="+", default=None,
                   help="test caches (folders or files) to score on; default: each run's own --data")
    p.add_argument("--protocol", choices=PROTOCOLS + ("both",), default=None,
                   help="scoring protocol (default: museval for --run, both for --all)")
    p.add_argument("--out", type=Path, default=ROOT / "results", help="where tables and figures go")
    p.add_argument("--phase", choices=("mixture", "griffin-lim"), default="mixture",
                   help="vocal phase for the waveforms scored by museval: the mixture's (paper) or Griffin-Lim's")
    p.add_argument("--wiener-iterations", type=int, default=0, metavar="N",
                   help="0 = the model's soft masks; N > 0 = norbert's Wiener filter with N EM iterations (pays "
                        "with two-source models, --target masked2)")
    p.add_argument("--archive", action="store_true",
                   help="also copy the scored runs' config, history and scores to OUT/scored/<run>/ (implied by "
                        "--all); --all keeps archived runs that are not under --runs-root in the tables")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="songs scored in parallel")
    args = p.parse_args(argv)
    if not args.run and not args.all:
        p.error("give --run RUN_DIR or --all")
    protocol = args.protocol or ("both" if args.all else "museval")
    hardware.configure_tensorflow()
    protocols = list(PROTOCOLS) if protocol == "both" else [protocol]
    run_dirs = list(args.run) + (runs.complete_runs(args.runs_root) if args.all else [])
    if not run_dirs and not (args.all and any((args.out / "scored").glob("*/config.json"))):
        raise SystemExit(f"evaluate: no complete runs under {args.runs_root}; train one first: "
                         "python data_prep.py && python train.py --base-filters 16 --epochs 5")
    started = time.time()
    groups: dict[str, dict] = {}
    for run_dir in run_dirs:
        try:
            scores, store = evaluate_run(run_dir, args.test_data, protocols, args.jobs, args.phase,
                                         args.wiener_iterations)
        except (runs.RunError, CacheError) as exc:
            raise SystemExit(f"evaluate: {exc}")
        config = runs.read_config(run_dir)
        group = groups.setdefault(store.fingerprint(), {"label": dataset_label(store), "runs": [], "store": store})
        group["runs"].append({"name": run_dir.name, "dir": run_dir, "config": config, "scores": scores})
        if args.all or args.archive:
            archive_run(run_dir, args.out / "scored")
        for proto, s in scores.items():
            h = headline(s)
            isr = f" ISR {fmt(h['ISR'])}" if "ISR" in h else ""
            print(f"evaluate: {run_dir.name} [{', '.join([proto, *variant(args.phase, args.wiener_iterations)])}] vocals "
                  f"SDR {fmt(h['SDR'])} SIR {fmt(h['SIR'])} SAR {fmt(h['SAR'])}{isr} dB on {group['label']}", flush=True)
    if not args.all:
        return
    add_archived(groups, archived_runs(args.out / "scored", {d.name for d in run_dirs}, protocols, args.phase,
                                       args.wiener_iterations))
    for group in groups.values():
        store = group["store"]
        group["baselines"] = evaluate_baselines(store, protocols, args.jobs, args.out / "baselines")
        live = [r for r in group["runs"] if not r.get("archived") and protocols[0] in r["scores"]]
        if not live:
            continue
        best = max(live, key=lambda r: headline(r["scores"][protocols[0]])["SDR"] or -np.inf)
        slug = "_".join(sorted({p.parent.name for p in store.paths}))
        plot_spectrograms(best["dir"], store, args.out / f"spectrograms_{slug}.png")
    command = "python evaluate.py --all" + (f" --test-data {' '.join(args.test_data)}" if args.test_data else "") + \
        (f" --protocol {args.protocol}" if args.protocol else "") + \
        (f" --phase {args.phase}" if args.phase != "mixture" else "") + \
        (f" --wiener-iterations {args.wiener_iterations}" if args.wiener_iterations else "")
    tables = write_tables(list(groups.values()), args.out, command)
    plot_normalization(args.out / "normalization.png")
    plot_table(list(groups.values()), args.out / "table1.png")
    runs.plot_curves(run_dirs + [r["dir"] for g in groups.values() for r in g["runs"] if r.get("archived")],
                     args.out / "training_curves.png", "all runs")
    n_archived = sum(1 for g in groups.values() for r in g["runs"] if r.get("archived"))
    print(f"evaluate: {len(run_dirs)} runs{f' + {n_archived} archived' if n_archived else ''} on {len(groups)} test set(s), protocols {', '.join(protocols)}, "
          f"in {time.time() - started:.0f} s -> {tables[0]}")


if __name__ == "__main__":
    main()
