"""Score trained runs and regenerate Table I, under the paper's protocol and the field's standard one.

    python evaluate.py --run results/runs/frequency-minmax-mae       # one run, museval protocol
    python evaluate.py --all                                         # every run: tables + figures
    python evaluate.py --all --test-data data/musdb18-7              # score every run on one test set

Protocols:
    museval (default)  BSSEval v4 (museval) on vocals and accompaniment (= mixture - vocals) against
                       the true stems (mono, 11025 Hz, from the source audio), 1 s windows and hop,
                       silent frames NaN, median over a song's frames, then median (and mean) over
                       songs; plus SI-SDR of the vocals. Comparable with published MUSDB18 numbers
                       only up to the mono 11025 Hz domain.
    paper              the released code's scoring: full windows in order, groups of 5 consecutive
                       windows scored by mir_eval.separation.bss_eval_sources as if they were 5
                       sources (compute_permutation=False), reference = true vocal magnitude with
                       the mixture phase, groups with sum |reference| < 100 dropped, mean over all
                       segments. The numbers to hold against the paper's 7.1 / 25.2 / 7.2, and not
                       comparable with anything else (SIR measures leakage between unrelated segments).
Baselines on the same songs and protocol: the mixture as the estimate, and the oracle ideal
ratio masks IRM1 (|V| / (|V| + |A|)) and IRM2 (power) at the paper's STFT.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import audio

ROOT = Path(__file__).resolve().parent
PROTOCOLS = ("museval", "paper")
BASELINES = ("mixture", "irm1", "irm2")
METRICS = ("SDR", "SIR", "SAR")
GROUP_WINDOWS = 5                 # paper protocol: windows scored together as "sources"
SILENT_GROUP_SUM = 100.0          # paper protocol: sum |reference| below this drops a group
SCALER_LABEL = {"minmax": "Min/Max", "max": "Max", "robust": "Quantile"}
# Table I of the paper (its own protocol, full MUSDB18 test set): SDR, SIR, SAR, axis, scaler, loss.
PAPER_TABLE = [
    (7.1, 25.2, 7.2, "frequency", "minmax", "mae"), (7.1, 25.1, 7.2, "time", "minmax", "mae"),
    (6.7, 24.8, 6.8, "frequency", "minmax", "mse"), (5.7, 23.9, 5.8, "time", "robust", "mae"),
    (5.6, 23.3, 5.7, "time", "minmax", "mse"), (4.8, 22.6, 4.9, "time", "robust", "mse"),
    (-0.9, 16.6, -0.6, "frequency", "robust", "mse"), (-2.1, 15.8, -1.8, "frequency", "robust", "mae"),
]


# ---------------------------------------------------------------- metrics
def check_pair(reference: np.ndarray, estimate: np.ndarray, what: str = "estimate") -> None:
    """Reject shape mismatches before scoring: report 003 lost ~90 dB of SDR to a mono/stereo mix-up."""
    reference, estimate = np.asarray(reference), np.asarray(estimate)
    ref_ch = 1 if reference.ndim == 1 else reference.shape[-1]
    est_ch = 1 if estimate.ndim == 1 else estimate.shape[-1]
    if ref_ch != est_ch or reference.ndim != estimate.ndim:
        raise ValueError(f"{what}: {est_ch} channel(s) {estimate.shape} but the reference has {ref_ch} "
                         f"{reference.shape}; score mono against mono (both at {audio.SAMPLE_RATE} Hz)")
    if reference.shape[0] != estimate.shape[0]:
        raise ValueError(f"{what}: {estimate.shape[0]} samples but the reference has {reference.shape[0]}; "
                         "trim or pad the estimate to the reference's exact length")


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (report 002); NaN for a silent reference."""
    check_pair(reference, estimate)
    s, s_hat = reference - reference.mean(), estimate - estimate.mean()
    energy = np.dot(s, s)
    if energy <= 1e-12:
        return float("nan")
    target = np.dot(s_hat, s) / energy * s
    noise = s_hat - target
    return float(10 * np.log10(np.dot(target, target) / max(np.dot(noise, noise), 1e-20)))


def museval_song(ref_vocal: np.ndarray, ref_acc: np.ndarray, est_vocal: np.ndarray,
                 est_acc: np.ndarray) -> dict:
    """BSSEval v4 of one song: per-source medians over 1 s frames (NaN frames ignored)."""
    import museval
    for ref, est, name in ((ref_vocal, est_vocal, "vocals"), (ref_acc, est_acc, "accompaniment")):
        check_pair(ref, est, f"{name} estimate")
    if not np.any(ref_vocal) or not np.any(ref_acc):
        # museval cannot score an all-zero reference (an instrumental song, say): no frame counts
        empty = {"SDR": None, "SIR": None, "SAR": None, "ISR": None, "frames": 0}
        return {"vocals": {**empty, "SI-SDR": None}, "accompaniment": dict(empty),
                "note": "a reference is silent over the whole song: not scored"}
    references = np.stack([ref_vocal, ref_acc])[..., None].astype(np.float64)
    estimates = np.stack([est_vocal, est_acc])[..., None].astype(np.float64)
    sdr, isr, sir, sar = museval.evaluate(references, estimates, win=audio.SAMPLE_RATE, hop=audio.SAMPLE_RATE)
    out = {}
    for i, source in enumerate(("vocals", "accompaniment")):
        with np.errstate(all="ignore"):
            out[source] = {m: _nan_to_none(np.nanmedian(v[i])) if np.any(~np.isnan(v[i])) else None
                           for m, v in (("SDR", sdr), ("SIR", sir), ("SAR", sar), ("ISR", isr))}
        out[source]["frames"] = int(np.sum(~np.isnan(sdr[i])))
    out["vocals"]["SI-SDR"] = _nan_to_none(si_sdr(ref_vocal, est_vocal))
    return out


def _nan_to_none(x) -> float | None:
    """NaN (nothing to score) -> None; +inf (a perfect estimate) stays."""
    x = float(x)
    return None if np.isnan(x) else x


def paper_groups(est_mag, ref_mag, phase, valid_frames: np.ndarray):
    """The released code's segments: full windows only (it dropped each song's partial last one),
    5 consecutive windows per group (groups may straddle songs; the remainder is dropped).

    est_mag, ref_mag, phase: arrays, or callables window index -> (N_BINS, WINDOW_FRAMES, 1), so
    a test set is streamed from its cache instead of loaded whole.
    """
    get = [x if callable(x) else x.__getitem__ for x in (est_mag, ref_mag, phase)]
    full = np.flatnonzero(valid_frames == audio.WINDOW_FRAMES)
    n_groups = len(full) // GROUP_WINDOWS
    for g in range(n_groups):
        segments = []
        for i in full[g * GROUP_WINDOWS:(g + 1) * GROUP_WINDOWS]:
            est, ref, ph = (f(i)[..., 0] for f in get)
            segments.append((audio.reconstruct(est, ph, audio.WINDOW_SAMPLES),
                             audio.reconstruct(ref, ph, audio.WINDOW_SAMPLES)))
        yield np.stack([e for e, _ in segments]), np.stack([r for _, r in segments])


def paper_group_score(pair: tuple[np.ndarray, np.ndarray]) -> dict:
    """Score one group of 5 segments as 5 sources; {'dropped': reason} for silent references."""
    import warnings
    estimates, references = pair
    if np.sum(np.abs(references)) < SILENT_GROUP_SUM:
        return {"dropped": "near-silent reference"}
    if np.any(np.all(references == 0, axis=1)) or np.any(np.all(estimates == 0, axis=1)):
        return {"dropped": "an all-zero segment (bss_eval_sources cannot score it)"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mir_eval.separation import bss_eval_sources
        sdr, sir, sar, _ = bss_eval_sources(references, estimates, compute_permutation=False)
    return {"SDR": sdr.tolist(), "SIR": sir.tolist(), "SAR": sar.tolist()}


# ---------------------------------------------------------------- estimates
def accomp_mag_windows(store, song: int) -> np.ndarray:
    """Accompaniment magnitude windows, from the stored accompaniment audio (one STFT)."""
    windows, _ = audio.to_windows(np.abs(audio.stft(store.read_wave("accomp_wave", song))))
    return windows[..., None]


def baseline_song(store, song: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(vocal magnitude windows, vocal waveform) of a baseline: the mixture, or an oracle IRM."""
    mix_mag, phase = store.read_song("mix_mag", song), store.read_song("mix_phase", song)
    if kind == "mixture":
        vocal_mag = mix_mag
    else:
        power = 1 if kind == "irm1" else 2
        v, a = store.read_song("vocal_mag", song) ** power, accomp_mag_windows(store, song) ** power
        vocal_mag = mix_mag * np.divide(v, v + a, out=np.zeros_like(v), where=(v + a) > 0)
    from separation import windows_to_wave
    valid = store.valid_frames[store.song_id == song]
    return vocal_mag, windows_to_wave(vocal_mag, phase, valid, store.songs["length"][song])


def estimates(store, source, cache_path: Path | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """All songs' (vocal magnitude windows, vocal waves) for a separator or a baseline name.

    Cached in `cache_path` so re-scoring never re-runs the model.
    """
    import h5py
    from tqdm import tqdm
    if cache_path and cache_path.exists():
        with h5py.File(cache_path, "r") as f:
            starts = np.concatenate([[0], np.cumsum(store.songs["length"])])
            wave = f["vocal_wave"][:]
            return f["vocal_mag"][:], [wave[starts[i]:starts[i + 1]] for i in range(store.n_songs)]
    mags, waves = [], []
    from separation import separate_cached_song
    label = source if isinstance(source, str) else "separating"
    for song in tqdm(range(store.n_songs), desc=f"{label:10s}", unit="song", file=sys.stderr, leave=False):
        mag, wave = baseline_song(store, song, source) if isinstance(source, str) else \
            separate_cached_song(store, song, source)
        mags.append(mag)
        waves.append(wave)
    vocal_mag = np.concatenate(mags)
    if cache_path:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_path.with_name(cache_path.name + ".partial")
        with h5py.File(partial, "w") as f:
            f.create_dataset("vocal_mag", data=vocal_mag, chunks=(1, *vocal_mag.shape[1:]))
            f.create_dataset("vocal_wave", data=np.concatenate(waves))
        os.replace(partial, cache_path)
    return vocal_mag, waves


# ---------------------------------------------------------------- protocols
def _museval_task(task):
    return museval_song(*task)


def score(store, vocal_mag: np.ndarray, vocal_waves: list[np.ndarray], protocol: str, jobs: int,
          label: str = "") -> dict:
    """Score estimates of every song of `store` under `protocol` (BSSEval in `jobs` processes)."""
    from tqdm import tqdm
    from data_prep import parallel_map
    if protocol == "museval":
        def tasks():
            for song in range(store.n_songs):
                mix = store.read_wave("mix_wave", song)
                yield (store.read_wave("vocal_wave", song), store.read_wave("accomp_wave", song),
                       vocal_waves[song], mix - vocal_waves[song])
        per_song = list(tqdm(parallel_map(_museval_task, tasks(), jobs, processes=True), total=store.n_songs,
                             desc=f"museval {label}"[:24], unit="song", file=sys.stderr, leave=False))
        songs = [{"name": store.songs["name"][i], **s} for i, s in enumerate(per_song)]
        return {"protocol": "museval", "songs": songs, "aggregate": aggregate_museval(songs)}
    groups = paper_groups(vocal_mag, lambda i: store.read("vocal_mag", i), lambda i: store.read("mix_phase", i),
                          store.valid_frames)
    n_groups = int(np.sum(store.valid_frames == audio.WINDOW_FRAMES)) // GROUP_WINDOWS
    results = list(tqdm(parallel_map(paper_group_score, groups, jobs, processes=True), total=n_groups,
                        desc=f"paper {label}"[:24], unit="group", file=sys.stderr, leave=False))
    kept = [r for r in results if "dropped" not in r]
    aggregate = {m: (float(np.mean([x for r in kept for x in r[m]])) if kept else None) for m in METRICS}
    aggregate.update({"groups": len(results), "groups_scored": len(kept),
                      "groups_dropped": len(results) - len(kept),
                      "dropped_reasons": sorted({r["dropped"] for r in results if "dropped" in r})})
    return {"protocol": "paper", "groups": results, "aggregate": aggregate}


def aggregate_museval(songs: list[dict]) -> dict:
    out = {}
    for source in ("vocals", "accompaniment"):
        for metric in ("SDR", "SIR", "SAR", "ISR") + (("SI-SDR",) if source == "vocals" else ()):
            values = np.array([s[source][metric] for s in songs if s[source].get(metric) is not None], float)
            out[f"{source}_{metric}_median"] = float(np.median(values)) if len(values) else None
            out[f"{source}_{metric}_mean"] = float(np.mean(values)) if len(values) else None
    out["songs"] = len(songs)
    return out


def headline(scores: dict) -> dict:
    """SDR/SIR/SAR for the tables: vocals medians (museval) or segment means (paper)."""
    a = scores["aggregate"]
    if scores["protocol"] == "museval":
        return {m: a.get(f"vocals_{m}_median") for m in METRICS} | {"SI-SDR": a.get("vocals_SI-SDR_median")}
    return {m: a.get(m) for m in METRICS}


# ---------------------------------------------------------------- runs and baselines
def weights_key(run_dir: Path) -> str:
    weights = run_dir / "best.weights.h5"
    stat = weights.stat()
    return hashlib.sha1(f"{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest()[:10]


def test_store(test_data: list[str]):
    from cache import WindowStore, resolve_caches
    return WindowStore(resolve_caches(test_data, "test"))


def evaluate_run(run_dir: Path, test_data: list[str] | None, protocols: list[str], jobs: int):
    """Score one run; writes run_dir/scores_<protocol>.json. Returns ({protocol: scores}, test store)."""
    from separation import Separator
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    data = test_data or config["args"]["data"]
    store = test_store(data)
    cache = run_dir / "estimates" / f"{store.fingerprint()}-{weights_key(run_dir)}.h5"
    separator = None if cache.exists() else Separator.from_run(run_dir)
    vocal_mag, waves = estimates(store, separator, cache)
    out = {}
    for protocol in protocols:
        scores = score(store, vocal_mag, waves, protocol, jobs, run_dir.name)
        scores.update({"run": run_dir.name, "test_data": [str(p) for p in store.paths],
                       "test_fingerprint": store.fingerprint(), "weights": "best.weights.h5",
                       "evaluated": time.strftime("%Y-%m-%d %H:%M:%S")})
        (run_dir / f"scores_{protocol}.json").write_text(json.dumps(scores, indent=1))
        out[protocol] = scores
    return out, store


def evaluate_baselines(store, protocols: list[str], jobs: int, out_root: Path) -> dict:
    """Mixture and oracle IRM scores on a test store, cached under out_root/<fingerprint>/."""
    folder = out_root / store.fingerprint().replace("+", "_")
    out = {}
    for kind in BASELINES:
        for protocol in protocols:
            path = folder / f"{kind}_{protocol}.json"
            if path.exists():
                out[(kind, protocol)] = json.loads(path.read_text())
                continue
            vocal_mag, waves = estimates(store, kind)
            scores = score(store, vocal_mag, waves, protocol, jobs, kind)
            scores.update({"baseline": kind, "test_data": [str(p) for p in store.paths],
                           "test_fingerprint": store.fingerprint()})
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(scores, indent=1))
            out[(kind, protocol)] = scores
    return out


# ---------------------------------------------------------------- tables and figures
def paper_row(norm: str, scaler: str, loss: str):
    return next((r[:3] for r in PAPER_TABLE if r[3:] == (norm, scaler, loss)), None)


def fmt(x, bold=False) -> str:
    if x is None:
        return "n/a"
    text = f"{x:.1f}"
    return f"**{text}**" if bold else text


def table_rows(runs: list[dict], protocol: str) -> list[dict]:
    rows = []
    for run in runs:
        if protocol not in run["scores"]:
            continue
        args = run["config"]["args"]
        h = headline(run["scores"][protocol])
        rows.append({**h, "run": run["name"], "norm": args["norm"], "scaler": args["scaler"], "loss": args["loss"],
                     "model": f"{args['arch']}-{args['base_filters']} {args['target']}",
                     "epochs": run["config"].get("results", {}).get("completed_epochs"),
                     "paper": paper_row(args["norm"], args["scaler"], args["loss"])})
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
            extra = " | SI-SDR" if protocol == "museval" else ""
            md += [f"| SDR | SIR | SAR | Normalization | Scaler | Loss | model | epochs{extra} | paper SDR | paper SIR | paper SAR |",
                   "|---:|---:|---:|---|---|---|---|---:|" + ("---:|" if extra else "") + "---:|---:|---:|"]
            best = {m: max((r[m] for r in rows if r[m] is not None), default=None) for m in METRICS}
            for r in rows:
                cells = [fmt(r[m], r[m] is not None and r[m] == best[m]) for m in METRICS]
                cells += [r["norm"], SCALER_LABEL[r["scaler"]], r["loss"].upper(), r["model"], str(r["epochs"])]
                if extra:
                    cells.append(fmt(r["SI-SDR"]))
                cells += [fmt(x) for x in (r["paper"] or (None, None, None))]
                md.append("| " + " | ".join(cells) + " |")
                csv_rows.append({"dataset": group["label"], "protocol": protocol, "run": r["run"],
                                 **{m: r[m] for m in METRICS}, "norm": r["norm"], "scaler": r["scaler"],
                                 "loss": r["loss"], "model": r["model"], "epochs": r["epochs"]})
                tex.append(" & ".join([fmt(r[m]) for m in METRICS] + [r["norm"], SCALER_LABEL[r["scaler"]],
                                                                      r["loss"].upper()]) + r" \\")
            for (kind, _), scores in sorted(base.items()):
                h = headline(scores)
                label = {"mixture": "mixture as estimate", "irm1": "oracle IRM1 (magnitude ratio)",
                         "irm2": "oracle IRM2 (power ratio)"}[kind]
                cells = [fmt(h[m]) for m in METRICS] + ["", "", "", f"*baseline: {label}*", ""]
                if extra:
                    cells.append(fmt(h.get("SI-SDR")))
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


def plot_spectrograms(run_dir: Path, store, path: Path) -> Path:
    """Mixture / true vocal / predicted vocal of a test excerpt, like the paper's figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from separation import Separator
    song = int(np.argmax([np.sum(store.read_song("vocal_mag", s)) for s in range(store.n_songs)]))
    window = int(np.argmax(store.read_song("vocal_mag", song).sum(axis=(1, 2, 3))))
    mix = store.read_song("mix_mag", song)[window:window + 1]
    vocal = store.read_song("vocal_mag", song)[window]
    predicted = Separator.from_run(run_dir).vocal_mag(mix)[0]
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
    for scaler in ("minmax", "robust"):
        for axis in ("frequency", "time"):
            y = normalize.transform(x, normalize.fit(x, axis, scaler)).numpy()[0, ..., 0]
            panels.append((f"{SCALER_LABEL[scaler]}, {axis} axis", y))
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
    p.add_argument("--runs-root", type=Path, default=ROOT / "results" / "runs", help="where train.py wrote runs")
    p.add_argument("--test-data", nargs="+", default=None,
                   help="test caches (folders or files) to score on; default: each run's own --data")
    p.add_argument("--protocol", choices=PROTOCOLS + ("both",), default=None,
                   help="scoring protocol (default: museval for --run, both for --all)")
    p.add_argument("--out", type=Path, default=ROOT / "results", help="where tables and figures go")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="songs scored in parallel")
    args = p.parse_args(argv)
    if not args.run and not args.all:
        p.error("give --run RUN_DIR or --all")
    protocol = args.protocol or ("both" if args.all else "museval")
    protocols = list(PROTOCOLS) if protocol == "both" else [protocol]
    from model import complete_runs
    run_dirs = list(args.run) + (complete_runs(args.runs_root) if args.all else [])
    if not run_dirs:
        raise SystemExit(f"evaluate: no complete runs under {args.runs_root}; train one first: "
                         "python data_prep.py && python train.py --base-filters 16 --epochs 5")
    started = time.time()
    groups: dict[str, dict] = {}
    for run_dir in run_dirs:
        scores, store = evaluate_run(run_dir, args.test_data, protocols, args.jobs)
        config = json.loads((run_dir / "config.json").read_text())
        group = groups.setdefault(store.fingerprint(), {"label": dataset_label(store), "runs": [], "store": store})
        group["runs"].append({"name": run_dir.name, "dir": run_dir, "config": config, "scores": scores})
        for proto, s in scores.items():
            h = headline(s)
            print(f"evaluate: {run_dir.name} [{proto}] vocals SDR {fmt(h['SDR'])} SIR {fmt(h['SIR'])} "
                  f"SAR {fmt(h['SAR'])} dB on {group['label']}", flush=True)
    if not args.all:
        return
    for group in groups.values():
        store = group["store"]
        group["baselines"] = evaluate_baselines(store, protocols, args.jobs, args.out / "baselines")
        best = max(group["runs"], key=lambda r: headline(r["scores"][protocols[0]])["SDR"] or -np.inf)
        slug = "_".join(sorted({p.parent.name for p in store.paths}))
        plot_spectrograms(best["dir"], store, args.out / f"spectrograms_{slug}.png")
    command = "python evaluate.py --all" + (f" --test-data {' '.join(args.test_data)}" if args.test_data else "")
    tables = write_tables(list(groups.values()), args.out, command)
    plot_normalization(args.out / "normalization.png")
    from train import plot_curves
    plot_curves(run_dirs, args.out / "training_curves.png", "all runs")
    print(f"evaluate: {len(run_dirs)} runs on {len(groups)} test set(s), protocols {', '.join(protocols)}, "
          f"in {time.time() - started:.0f} s -> {tables[0]}")


if __name__ == "__main__":
    main()
