"""Where separate.py's time goes, stage by stage: decode, resampling, STFTs, the model, masks and
Wiener filtering, inverse STFTs, writing (cProfile's cumulative time of each stage's functions).

    python bench/stages.py ../shared/data/musdb18-7/test --limit 10      # per 7-second MUSDB18 song
    python bench/stages.py song.wav --channels each --wiener-iterations 0

The separator is loaded and warmed up on the first song (untimed), as bench/compare.py times it;
then every song is separated once under the profiler. Profiling adds a little to every Python call,
so the total is a few percent above an unprofiled run; the shares are what to read.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import print_machine  # noqa: E402

# stage -> (module file, function[@class]) whose cumulative times it sums (a call from another function
# of the same stage, as soft_mask inside vocal_spectrum, is counted once: in its caller)
STAGES = {
    "decode and reading": [("separation.py", "__init__@AudioSource"),
                           ("separation.py", "read@AudioSource")],
    "resampling to 11025 Hz": [("audio.py", "resample")],
    "STFTs (model domain and full band)": [("audio.py", "spectrogram")],
    "model (scaler + U-Net + inverse)": [("separation.py", "forward")],
    "masks and Wiener filter": [("separation.py", "source_ratios"), ("separation.py", "vocal_spectrum"),
                                ("separation.py", "interpolate_mask"), ("separation.py", "apply_native_mask"),
                                ("separation.py", "soft_mask")],
    "inverse STFTs": [("audio.py", "waveform")],
    "writing the stems": [("separation.py", "__call__@StemWriters"), ("separation.py", "close@StemWriters")],
}


def _line_owner(path: str, line: int) -> str | None:
    """The class a method defined at path:line belongs to (the nearest `class` line above it)."""
    lines = Path(path).read_text().splitlines()[:line]
    for text in reversed(lines):
        if text.startswith("class "):
            return text[6:].split("(")[0].split(":")[0].strip()
        if text.startswith("def "):
            return None
    return None


def _matches(key: tuple, file: str, wanted: str) -> bool:
    path, line, name = key
    function, _, owner = wanted.partition("@")
    return path.endswith(file) and name == function and (not owner or _line_owner(path, line) == owner)


def stage_seconds(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds per stage (STAGES) from a profile, calls within a stage counted once."""
    found = {}
    for stage, functions in STAGES.items():
        keys = {key for key in stats.stats for file, wanted in functions if _matches(key, file, wanted)}
        total = 0.0
        for key in keys:
            _, _, _, cumulative, callers = stats.stats[key]
            inner = sum(caller[3] for caller_key, caller in callers.items() if caller_key in keys)
            total += cumulative - inner
        found[stage] = total
    return found


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", type=Path, help="audio files, or folders whose files are taken in name order")
    p.add_argument("--limit", type=int, default=0, help="at most this many songs (0 = all)")
    p.add_argument("--run", default=None, help="model run folder (default: the shipped model)")
    p.add_argument("--backend", default="auto", help="separate.py --backend")
    p.add_argument("--channels", default=None, help="separate.py --channels (default: the model's own)")
    p.add_argument("--wiener-iterations", type=int, default=None, help="default: the model's own")
    p.add_argument("--band", default="full", choices=("full", "paper"))
    args = p.parse_args(argv)
    songs = [f for path in args.inputs for f in (sorted(x for x in path.iterdir() if x.is_file())
                                                  if path.is_dir() else [path])]
    songs = songs[:args.limit] if args.limit else songs
    if not songs:
        raise SystemExit("bench/stages.py: no audio files in " + " ".join(map(str, args.inputs)))
    print_machine()
    import audio
    from separation import Separator
    options = {k: v for k, v in (("channels", args.channels), ("wiener_iterations", args.wiener_iterations))
               if v is not None}
    separator = Separator.from_run(args.run, backend=args.backend, band=args.band, **options)
    with tempfile.TemporaryDirectory() as out:
        separator.separate_to_file(songs[0], out)               # warm-up: graph set-up, first allocations
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for song in songs:
            separator.separate_to_file(song, out)
        profile.disable()
        total = time.perf_counter() - started
    seconds = stage_seconds(pstats.Stats(profile))
    seconds["the rest (Python glue, copies, progress)"] = total - sum(seconds.values())
    audio_seconds = sum(audio.duration(song) for song in songs)
    sep = separator.song_separator
    print(f"stages: {len(songs)} song(s), {audio_seconds:.1f} s of audio; backend {separator.backend}, "
          f"channels {sep.channels}, Wiener iterations {sep.wiener_iterations}, band {sep.band}")
    print(f"{'stage':45s} {'ms per song':>12s} {'share':>7s}")
    for stage, value in seconds.items():
        print(f"{stage:45s} {1000 * value / len(songs):12.1f} {100 * value / total:6.1f}%")
    print(f"{'total (profiled)':45s} {1000 * total / len(songs):12.1f} {100.0:6.1f}%  = "
          f"{audio_seconds / total:.1f}x real time")


if __name__ == "__main__":
    main()
