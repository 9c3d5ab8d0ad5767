"""Test-time variants of a trained two-source model's output stage, scored without retraining.

    python bench/postfilter.py --run pretrained --split valid            # -> results/postfilter.md
    python bench/postfilter.py --run pretrained --split valid --shifts 1 2 4 --powers 0.5 1 2

Each knob is varied alone from the shipped chain (shifts 1, power 1).

Knobs that cost nothing to train, measured on the validation songs (the choice) before any
default changes:

* shifts N: the song's spectrogram is cut into model windows N times, each grid starting
  k * 128 / N frames later (k = 0..N-1), and the source magnitudes are averaged over the grids
  that cover each frame (Demucs' "shift trick"; the time-axis scaler sees other window contents
  in each grid). Costs N model passes. shifts 0: no windows, the song's whole spectrogram in one
  pass (frames padded to the architecture's multiple, model.frame_multiple): no window edges.
* power p: soft masks from the sources' ratios raised to p, V^p / (V^p + A^p) (Spleeter's masks
  use p = 2; the shipped chain p = 1).
* passes N: the model runs again on its own vocal estimate and its mask multiplies the first
  (a second look at what leaked through). Costs N model passes.

Scoring is evaluate.py's museval protocol (mono 11025 Hz, the cache's mixture phase, median over
1 s frames, then over songs).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def whole_song_mags(window_model, mix_mag: np.ndarray) -> np.ndarray:
    """(bins, T, S) source magnitudes with the song's whole (bins, T) spectrogram as one window:
    the run's weights in a network of open length (model.build_unet(frames=None)), behind the same
    scaler and inverse as the windowed chain (separation.WindowModel)."""
    import model as model_lib
    from separation import WindowModel
    arch = window_model.config["args"].get("arch", "paper")
    if getattr(window_model, "whole_song", None) is None:
        net = model_lib.build_unet(window_model.config["args"]["base_filters"], arch, window_model.target,
                                   frames=None)
        net.set_weights(window_model.model.get_weights())
        window_model.whole_song = WindowModel(net, window_model.norm, window_model.scaler, window_model.target)
    frames, multiple = mix_mag.shape[1], model_lib.frame_multiple(arch)
    x = np.zeros((1, mix_mag.shape[0], -(-frames // multiple) * multiple, 1), np.float32)
    x[0, :, :frames, 0] = mix_mag
    return window_model.whole_song.source_mags(x)[0, :, :frames]


def vocal_waves(store, window_model, shifts: int, power: float, passes: int = 1) -> list[np.ndarray]:
    """Each song's vocal waveform at 11025 Hz: soft mask from the (shift-averaged) ratios ** power;
    each further pass runs the model on the previous pass's vocals and multiplies its mask in."""
    import audio
    from separation import song_source_mags, source_ratios, vocal_spectrum, windows_to_spec
    waves = []
    for song in range(store.n_songs):
        vocal = windows_to_spec(store.read_song("mix_mag", song), store.read_song("mix_phase", song),
                                store.valid_frames[store.song_id == song])
        for _ in range(passes):
            mags = whole_song_mags(window_model, np.abs(vocal)) if shifts == 0 else \
                song_source_mags(window_model, np.abs(vocal), shifts)
            ratios = source_ratios(np.abs(vocal), mags) ** power
            vocal = vocal_spectrum(vocal[..., None], ratios)[..., 0]
        waves.append(audio.istft(vocal, store.songs["length"][song]))
    return waves


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="pretrained", help="a two-source run (target direct2 or masked2)")
    p.add_argument("--data", default="data/musdb18-7", help="cache folder")
    p.add_argument("--split", default="valid", choices=["valid", "test"], help="songs scored (choose on valid)")
    p.add_argument("--shifts", type=int, nargs="+", default=[1, 2, 4], help="window grids averaged (0 = the whole song as one window)")
    p.add_argument("--powers", type=float, nargs="+", default=[0.5, 0.75, 1.0, 1.5, 2.0, 3.0], help="mask exponents")
    p.add_argument("--passes", type=int, nargs="+", default=[1], help="model passes, each on the previous vocals")
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--out", default="results/postfilter", help="OUT.md is written")
    args = p.parse_args()
    from common import print_machine
    print_machine()
    import hardware
    hardware.configure_tensorflow()
    import scoring
    from separation import WindowModel
    store = scoring.test_store([str(Path(args.data) / f"{args.split}.h5")])
    window_model = WindowModel.from_run(args.run)
    if window_model.config["args"]["target"] not in ("direct2", "masked2"):
        raise SystemExit(f"postfilter: {args.run} estimates the vocals only; its masks need a second source "
                         "(a run trained with --target direct2 or masked2)")
    rows = []
    # one knob at a time from the shipped chain (shifts 1, power 1, passes 1), which comes first
    shipped = (1, 1.0, 1)
    variants = sorted({(s, 1.0, 1) for s in args.shifts} | {(1, q, 1) for q in args.powers} |
                      {(1, 1.0, n) for n in args.passes} | {shipped}, key=lambda v: (v != shipped, v))
    for shifts, power, passes in variants:
        t0 = time.perf_counter()
        waves = vocal_waves(store, window_model, shifts, power, passes)
        agg = scoring.score(store, np.zeros((0,)), waves, "museval", args.jobs,
                            f"s{shifts} p{power:g} n{passes}")["aggregate"]
        rows.append(f"| {shifts or 'whole song'} | {power:g} | {passes} | {agg['vocals_SDR_median']:.2f} | {agg['vocals_SIR_median']:.2f} | "
                    f"{agg['vocals_SAR_median']:.2f} | {agg['vocals_SI-SDR_median']:.2f} | "
                    f"{agg['accompaniment_SDR_median']:.2f} | {time.perf_counter() - t0:.0f} |")
        print(rows[-1], flush=True)
    command = "python bench/postfilter.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"# Test-time variants of {Path(args.run).name} ({time.strftime('%Y-%m-%d')})", "",
        f"{store.n_songs} {args.split} songs of {args.data}; museval (evaluate.py's protocol), median over songs, dB. "
        "shifts = window grids averaged, power = mask exponent, passes = model passes, each on the previous "
        "pass's vocals (1, 1, 1 = the shipped chain).", "",
        f"Command: `{command}`", "",
        "| shifts | power | passes | vocals SDR | vocals SIR | vocals SAR | vocals SI-SDR | accomp. SDR | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, ""])
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    print(f"postfilter: {len(rows)} variants -> {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
