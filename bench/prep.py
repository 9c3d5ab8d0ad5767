"""Benchmark data_prep.py: throughput vs the ffmpeg decode floor, peak RSS vs dataset size.

    python bench/prep.py                                  # all three measurements
    python bench/prep.py --musdb-root ../shared/data/musdb18-7 --compression data/musdb18-7/train.h5

1. Throughput: seconds of audio prepared per wall second on the MUSDB18 stem files, next to
   ffmpeg alone decoding the same files' streams with the same parallelism (the floor).
2. Peak RSS (largest process) of data_prep for a small and a 4x larger demo dataset.
3. --compression: HDF5 size and window-read speed of a cache's arrays with none / lzf / gzip.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py
DEFAULT_MUSDB = ROOT.parent / "shared" / "data" / "musdb18-7"



def decode_floor(files: list[Path], jobs: int) -> float:
    """Wall seconds for ffmpeg to decode every audio stream of every file to f32 PCM."""
    def decode(path: Path) -> None:
        n_streams = 5 if path.name.endswith(".stem.mp4") else 1
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path)]
        for k in range(n_streams):
            cmd += ["-map", f"0:a:{k}", "-f", "f32le", "-y", "/dev/null"]
        subprocess.run(cmd, check=True)
    started = time.time()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(decode, files))
    return time.time() - started


def run_prep(args: list[str]) -> tuple[float, int, str]:
    """Run data_prep.py in a fresh process: (wall seconds, peak RSS in MB, summary line)."""
    from common import run_script
    wall, rss, stdout = run_script("data_prep.py", args)
    summary = [line for line in stdout.splitlines() if "songs (" in line]
    return wall, rss, summary[-1] if summary else ""


def bench_throughput(musdb_root: Path, jobs: int) -> None:
    files = sorted(musdb_root.glob("*/*.stem.mp4"))
    if not files:
        print(f"throughput: no *.stem.mp4 under {musdb_root}; skipped")
        return
    import audio
    audio.require_ffmpeg()
    decode_floor(files[:2], jobs)
    floor = decode_floor(files, jobs)
    with tempfile.TemporaryDirectory() as tmp:
        wall, rss, summary = run_prep(["--musdb-root", str(musdb_root), "--out", tmp])
    import stempeg
    seconds = sum(stempeg.Info(str(f)).duration(0) for f in files)
    print(f"throughput ({len(files)} stem files, {seconds / 60:.1f} min of audio, {jobs} parallel decodes):")
    print(f"  ffmpeg decode floor : {floor:6.1f} s  ({seconds / floor:6.1f} s of audio per s)")
    print(f"  data_prep.py        : {wall:6.1f} s  ({seconds / wall:6.1f} s of audio per s) "
          f"= {wall / floor:.2f}x the floor (target <= 1.5x, Python start-up included)")
    print(f"  {summary}")


def bench_rss(jobs: int, songs: int, seconds: float) -> None:
    import demo_data
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for n in (songs, 4 * songs):
            root = demo_data.build_demo(Path(tmp) / f"demo{n}", n_train=n, n_test=0, seconds=seconds,
                                        include_real=False)
            wall, rss, _ = run_prep(["--musdb-root", str(root), "--wav", "--out", f"{tmp}/out{n}",
                                     "--splits", "train", "--valid-fraction", "0"])
            results.append((n, wall, rss))
    print(f"peak RSS of data_prep ({seconds:.0f} s songs, default --jobs):")
    for n, wall, rss in results:
        print(f"  {n:4d} songs: {rss:5d} MB  ({wall:.1f} s)")
    print(f"  ratio 4x songs / 1x songs: {results[1][2] / results[0][2]:.2f} (flat = 1.0)")


def bench_compression(cache: Path, n_read: int = 200) -> None:
    import h5py
    import numpy as np
    with h5py.File(cache, "r") as f, tempfile.TemporaryDirectory() as tmp:
        n = min(len(f["mix_mag"]), 400)
        print(f"compression ({cache}, first {n} windows; read = {n_read} random windows one by one):")
        for name in ("mix_mag", "mix_phase"):
            data = f[name][:n]
            for comp in (None, "lzf", "gzip"):
                path = Path(tmp) / f"{name}-{comp}.h5"
                with h5py.File(path, "w") as g:
                    g.create_dataset("x", data=data, chunks=(1, *data.shape[1:]), compression=comp)
                with h5py.File(path, "r") as g:
                    idx = np.random.default_rng(0).integers(0, n, n_read)
                    started = time.time()
                    for i in idx:
                        g["x"][i]
                    rate = n_read / (time.time() - started)
                print(f"  {name:9s} {str(comp):5s}: {path.stat().st_size / data.nbytes:5.2f} of raw size, "
                      f"{rate:7.0f} windows/s read")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--musdb-root", type=Path, default=DEFAULT_MUSDB, help="MUSDB18 stems for the throughput test")
    p.add_argument("--jobs", type=int, default=2, help="parallel ffmpeg decodes for the floor; data_prep "
                                                         "runs with its default --jobs (cores + 1)")
    p.add_argument("--rss-songs", type=int, default=8, help="songs in the small RSS dataset (the large has 4x)")
    p.add_argument("--rss-seconds", type=float, default=20.0, help="length of each RSS demo song")
    p.add_argument("--compression", type=Path, default=None, metavar="CACHE",
                   help="also compare HDF5 compression on this cache file")
    p.add_argument("--skip", nargs="*", default=[], choices=["throughput", "rss"], help="measurements to skip")
    args = p.parse_args()
    from common import print_machine
    print_machine()
    if "throughput" not in args.skip:
        bench_throughput(args.musdb_root, args.jobs)
    if "rss" not in args.skip:
        bench_rss(args.jobs, args.rss_songs, args.rss_seconds)
    if args.compression:
        bench_compression(args.compression)


if __name__ == "__main__":
    main()
