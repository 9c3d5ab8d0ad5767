"""Test-time speeds (separate.py --speeds) scored on a cache's songs, for choosing a model's default.

    python bench/speeds.py --run pretrained --split valid --channels mix --wiener-iterations 1 \
        --variants 1 1,0.944,1.059 1,0.944,1.059,0.891,1.122 --out results/speeds/fast_valid
    python bench/speeds.py --run pretrained --data data/mir1k --split valid --variants 1 1,0.944,1.059 \
        --out results/speeds/fast_mir1k_valid
    python bench/paired.py "results/speeds/fast_valid.json#1,0.944,1.059" "results/speeds/fast_valid.json#1" ...

Each variant is one Separator (separation.py: the full-band chain of separate.py, in memory) on every
song of the split; the vocals are scored by evaluate.py's museval protocol (mono 11025 Hz, median over
1 s frames, then over songs). MUSDB18 songs are read from their stem files (stereo, 44.1 kHz);
MIR-1K clips hold accompaniment and voice as their two channels, so theirs is the cache's mono
mixture at 11025 Hz. OUT.json has each variant's aggregate and per-song scores (rows, as
bench/compare.py writes them, for bench/paired.py); OUT.md the table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py


def parse_variant(text: str) -> tuple[float, ...]:
    """'1,0.944,1.059' -> (1.0, 0.944, 1.059)."""
    try:
        speeds = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a variant is comma-separated speeds like 1,0.944,1.059; got {text!r}")
    import separation
    try:
        separation.check_speeds(speeds)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return speeds


def song_inputs(store, mono_mixture: bool) -> list[tuple[np.ndarray, int]]:
    """(waveform, rate) of each song of a cache: its original file (a MUSDB18 stem file, or the
    mixture.wav of a MUSDB18-HQ folder), or its cached mono mixture."""
    import audio
    if mono_mixture:
        return [(store.read_wave("mix_wave", i), audio.SAMPLE_RATE) for i in range(store.n_songs)]
    return [audio.read_audio(Path(p) / "mixture.wav" if Path(p).is_dir() else p) for p in store.songs["path"]]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="pretrained", help="run or shipped model folder")
    p.add_argument("--data", default="data/musdb18-7", help="cache folder made by data_prep.py")
    p.add_argument("--split", default="valid", choices=["valid", "test"], help="its songs to separate")
    p.add_argument("--channels", default=None, help="separate.py --channels (default: the model's own)")
    p.add_argument("--wiener-iterations", type=int, default=None, help="separate.py --wiener-iterations "
                                                                        "(default: the model's own)")
    p.add_argument("--variants", type=parse_variant, nargs="+", default=[(1.0,), (1.0, 0.944, 1.059)],
                   help="sets of speeds, each comma-separated (1 = the song as it is)")
    p.add_argument("--mono-mixture", action=argparse.BooleanOptionalAction, default=None,
                   help="separate the cache's mono mixture instead of the songs' files (default: for MIR-1K)")
    p.add_argument("--jobs", type=int, default=2, help="museval processes")
    p.add_argument("--out", required=True, help="OUT.json and OUT.md are written")
    args = p.parse_args(argv)
    from common import print_machine
    print_machine()
    import audio
    import hardware
    import scoring
    from separation import Separator
    store = scoring.test_store([args.data], args.split)
    mono = args.mono_mixture if args.mono_mixture is not None else \
        set(store.songs["source"]) <= {"mir1k", "mir1k-extra"}
    inputs = song_inputs(store, mono)
    rows, lines = {}, []
    for speeds in args.variants:
        name = ",".join(f"{s:g}" for s in speeds)
        separator = Separator.from_run(args.run, wiener_iterations=args.wiener_iterations, channels=args.channels,
                                       speeds=speeds)
        started = time.perf_counter()
        estimates = [separator.separate(wave, sr)["vocals"] for wave, sr in inputs]
        seconds = time.perf_counter() - started
        vocals = [np.pad(v, (0, max(0, int(n) - len(v))))[:int(n)] for v, n in
                  zip((audio.prepare_waveform(e, sr) for e, (_, sr) in zip(estimates, inputs)), store.songs["length"])]
        scores = scoring.score(store, np.zeros((0,)), vocals, "museval", args.jobs, f"speeds {name}")
        rows[name] = {"scores": scores["aggregate"], "songs": scoring.per_song(scores), "separate_seconds": seconds}
        agg = scores["aggregate"]
        lines.append(f"| {name} | {agg['vocals_SDR_median']:.2f} | {agg['vocals_SIR_median']:.2f} | "
                     f"{agg['vocals_SAR_median']:.2f} | {agg['accompaniment_SDR_median']:.2f} | {seconds:.1f} |")
        print(f"speeds: {name}: vocals SDR {agg['vocals_SDR_median']:.2f}, SIR {agg['vocals_SIR_median']:.2f} "
              f"({seconds:.1f} s to separate)", flush=True)
    song_kind = "cached mono mixtures" if mono else "original files"
    chain = separator.song_separator
    command = "python bench/speeds.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = (f"# Test-time speeds: {args.run} ({time.strftime('%Y-%m-%d')})\n\n"
            f"{store.n_songs} {args.split} songs of {args.data} ({song_kind}); --channels {chain.channels}, "
            f"--wiener-iterations {chain.wiener_iterations}; museval protocol of evaluate.py, median over songs, "
            f"dB. Seconds: separating all songs in memory, on {hardware.describe()} (not comparable across "
            f"machines or with a training run beside).\n\nCommand: `{command}`\n\n"
            "| speeds | vocals SDR | vocals SIR | vocals SAR | accomp. SDR | seconds |\n|---|---:|---:|---:|---:|---:|\n"
            + "\n".join(lines) + "\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "run": args.run, "data": args.data,
                                                    "split": args.split, "channels": chain.channels,
                                                    "wiener_iterations": chain.wiener_iterations, "rows": rows},
                                                   indent=1))
    print(f"speeds: wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
