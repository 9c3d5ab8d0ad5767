"""Scoring separated vocals: the field's museval protocol, the paper's protocol, and baselines.

    museval  BSSEval v4 (museval) on vocals and accompaniment (= mixture - vocals) against the true
             stems (mono, 11025 Hz, from the source audio), 1 s windows and hop, silent frames NaN,
             median over a song's frames, then median (and mean) over songs; plus SI-SDR.
    paper    the released code's scoring: full windows in order, groups of 5 consecutive windows
             scored by mir_eval.separation.bss_eval_sources as if they were 5 sources, reference =
             true vocal magnitude with the mixture phase, near-silent groups dropped, mean over
             segments.
Baselines on the same songs: the mixture as the estimate, oracle IRM1 and IRM2 at the paper's STFT.
Used by evaluate.py (runs, tables) and bench/compare.py.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

import audio
from parallel import parallel_map

PROTOCOLS = ("museval", "paper")
BASELINES = ("mixture", "irm1", "irm2")
METRICS = ("SDR", "SIR", "SAR")
GROUP_WINDOWS = 5                 # paper protocol: windows scored together as "sources"
SILENT_GROUP_SUM = 100.0          # paper protocol: sum |reference| below this drops a group


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
    """A cached song's accompaniment magnitude windows (not stored: one STFT of its accomp_wave)."""
    windows, _ = audio.to_windows(np.abs(audio.stft(store.read_wave("accomp_wave", song))))
    return windows[..., None][:store.songs["n_windows"][song]]


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


def estimates(store, source, cache_path: Path | None = None, phase: str = "mixture",
              wiener_iterations: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """All songs' (vocal magnitude windows, vocal waves) for a separator or a baseline name.

    Cached in `cache_path` so re-scoring never re-runs the model. phase: how a separator's waves are
    reconstructed, "mixture" or "griffin-lim" (baselines always use the mixture's phase);
    wiener_iterations: a separator's Wiener filtering (separation.vocal_spectrum).
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
            separate_cached_song(store, song, source, phase, wiener_iterations)
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


PER_SONG_METRICS = ("vocals_SDR", "vocals_SIR", "accompaniment_SDR")   # what benchmarks record per song


def song_values(scores: dict, source: str = "vocals", metric: str = "SDR") -> dict[str, float]:
    """{song name: its median over frames} of one museval metric, for paired comparisons between
    systems on the same songs (bench/paired.py); songs where the metric is undefined are left out."""
    return {s["name"]: float(s[source][metric]) for s in scores["songs"] if s[source].get(metric) is not None}


def per_song(scores: dict) -> dict[str, dict[str, float]]:
    """{"vocals_SDR": {song: value}, ...} for PER_SONG_METRICS: what bench/compare.py and
    bench/ablation.py store beside their medians, for bench/paired.py."""
    return {name: song_values(scores, *name.split("_", 1)) for name in PER_SONG_METRICS}


def headline(scores: dict) -> dict:
    """SDR/SIR/SAR for the tables: vocals medians (museval) or segment means (paper)."""
    a = scores["aggregate"]
    if scores["protocol"] == "museval":
        return {m: a.get(f"vocals_{m}_median") for m in METRICS} | \
            {"SI-SDR": a.get("vocals_SI-SDR_median"), "ISR": a.get("vocals_ISR_median")}
    return {m: a.get(m) for m in METRICS}


# ---------------------------------------------------------------- test sets and baselines
def test_store(test_data: list[str], split: str = "test"):
    """The songs of `split` in the given caches (folders, files or globs: cache.resolve_caches)."""
    from cache import WindowStore, resolve_caches
    return WindowStore(resolve_caches(test_data, split))


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
