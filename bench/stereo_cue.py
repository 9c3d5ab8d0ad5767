"""How much a stereo input could tell the model: each source's energy in the side channel.

    python bench/stereo_cue.py                                   # the 14 MUSDB18-7 validation songs
    python bench/stereo_cue.py --split test --out results/stereo_cue_test.md

The songs are those of a data_prep.py cache (default data/musdb18-7), read from the stem files
the cache was made from.

Our U-Net sees the mono mixture; Spleeter and Open-Unmix see both channels. The cue a second
channel adds is where each source sits in the stereo image: a centred source has no side
component S = (L - R) / 2, a wide one (panned instruments, stereo reverb) has. If the vocals were
centred and the band wide, the side channel would point at the band. This measures, per song and
source (44.1 kHz stereo stems of the stem file, vocals and accompaniment = drums + bass + other),
the side share |S|^2 / (|M|^2 + |S|^2) with M = (L + R) / 2, and a bound on what the cue can buy
when the model already estimates from M: removing every bit of the accompaniment's side energy
and none of the vocals' would lower the interference by -10 log10(1 - accompaniment side share) dB.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

STREAMS = {"vocals": [4], "accompaniment": [1, 2, 3]}      # MUSDB18 stem-file stream order


def side_share(wave: np.ndarray) -> float:
    """Share of a (samples, 2) stereo signal's energy in its side channel (L - R) / 2; 0 = centred
    (or silent), 1 = the channels in opposite phase."""
    mid = (wave[:, 0] + wave[:, 1]) / 2
    side = (wave[:, 0] - wave[:, 1]) / 2
    total = float(np.sum(mid ** 2) + np.sum(side ** 2))
    return float(np.sum(side ** 2)) / total if total > 0 else 0.0


def interference_bound_db(accompaniment_side_share: float) -> float:
    """dB less interference if all of the accompaniment's side energy, and only that, were removed."""
    return float(-10 * np.log10(max(1 - accompaniment_side_share, 1e-12)))


def read_stream(path: str, index: int) -> np.ndarray:
    """One stream of a stem file as 44.1 kHz stereo float32 (samples, 2)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-map", f"0:a:{index}", "-f", "f32le",
                          "-ac", "2", "-ar", "44100", "-"], capture_output=True)
    if raw.returncode != 0:
        raise SystemExit(f"stereo_cue: {path}: ffmpeg could not decode stream {index} "
                         f"({raw.stderr.decode(errors='replace').strip()[-200:]})")
    return np.frombuffer(raw.stdout, np.float32).reshape(-1, 2)


def song_shares(path: str) -> dict[str, float]:
    shares = {}
    for source, streams in STREAMS.items():
        waves = [read_stream(path, k) for k in streams]
        length = min(len(w) for w in waves)
        shares[source] = side_share(sum(w[:length] for w in waves))
    return shares


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/musdb18-7", help="a cache data_prep.py made from MUSDB18 stem files")
    p.add_argument("--split", choices=("train", "valid", "test"), default="valid",
                   help="the cache's split (default: valid, musdb's 14 official validation songs)")
    p.add_argument("--out", type=Path, default=None, help="a Markdown table (default: print only)")
    args = p.parse_args()
    import audio
    from cache import CacheError, WindowStore, resolve_caches
    audio.require_ffmpeg()
    try:
        store = WindowStore(resolve_caches([args.data], args.split))
    except CacheError as exc:
        raise SystemExit(f"stereo_cue: {exc}")
    songs = sorted(Path(str(path)) for path, source in zip(store.songs["path"], store.songs["source"])
                   if source == "musdb" and str(path).endswith(".stem.mp4"))
    missing = [s for s in songs if not s.exists()]
    if not songs or missing:
        raise SystemExit(f"stereo_cue: {args.data} ({args.split}): needs MUSDB18 stem files where data_prep.py "
                         f"read them ({missing[0] if missing else 'no MUSDB18 songs in the cache'})")
    lines = ["| song | vocals side share | accompaniment side share | interference bound (dB) |", "|---|---:|---:|---:|"]
    rows = []
    for song in songs:
        shares = song_shares(str(song))
        rows.append((shares["vocals"], shares["accompaniment"], interference_bound_db(shares["accompaniment"])))
        lines.append(f"| {song.name.removesuffix('.stem.mp4')} | {rows[-1][0]:.3f} | {rows[-1][1]:.3f} | {rows[-1][2]:.2f} |")
        print(lines[-1], flush=True)
    median = np.median(np.array(rows), axis=0)
    lines.append(f"| **median of {len(rows)}** | **{median[0]:.3f}** | **{median[1]:.3f}** | **{median[2]:.2f}** |")
    more_side = sum(v > a for v, a, _ in rows)
    summary = (f"stereo_cue: {len(rows)} {args.split} songs: side share median vocals {median[0]:.3f}, accompaniment "
               f"{median[1]:.3f}; the vocals are the wider source in {more_side} of {len(rows)}; interference bound "
               f"median {median[2]:.2f} dB")
    if args.out:
        args.out.write_text(f"# Stereo cue: side-channel energy shares ({args.split} songs)\n\n"
                            f"`python bench/stereo_cue.py --split {args.split}` (bench/stereo_cue.py's docstring "
                            f"defines the columns)\n\n" + "\n".join(lines) + f"\n\n{summary}\n")
    print(lines[-1])
    print(summary)


if __name__ == "__main__":
    main()
