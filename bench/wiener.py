"""Speed of the multichannel Wiener post-filter (filtering.py) against norbert's own code.

    python bench/wiener.py                   # one 60-s stereo chunk, 1 and 2 EM iterations
    python bench/wiener.py --seconds 20 --repeats 5

The input is what separation.SongSeparator hands the filter for one chunk of a 44.1 kHz stereo
song: the model's band (0-5.5 kHz, 513 of the 2049 bins of a 4096-point STFT), every frame of the
chunk, two sources. Random spectra: the cost does not depend on the values. Each figure is the
median of --repeats runs; norbert's (frame-by-frame Python loop) is timed once per setting.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent))     # appended: bench/train.py must not shadow train.py
from common import print_machine  # noqa: E402

import filtering  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    fn()                                  # warm-up: first-touch page faults are not the filter's
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="chunk length in seconds of 44.1 kHz audio")
    p.add_argument("--iterations", type=int, nargs="+", default=[1, 2], help="EM iterations to time")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per setting (median)")
    p.add_argument("--no-norbert", action="store_true", help="skip norbert's reference timing")
    args = p.parse_args(argv)
    print_machine()
    rng = np.random.default_rng(0)
    bins, frames = 513, int(args.seconds * 44100 / 1024) + 1
    mix_spec = (rng.standard_normal((bins, frames, 2)) + 1j * rng.standard_normal((bins, frames, 2))).astype(np.complex64)
    source_mags = (np.abs(mix_spec).mean(-1)[..., None, None] * rng.uniform(0, 1, (bins, frames, 1, 2))).astype(np.float32)
    source_mags = np.broadcast_to(source_mags, (bins, frames, 2, 2)).copy()
    try:
        import norbert
    except ImportError:
        norbert = None
    for iterations in args.iterations:
        ours = median_seconds(lambda: filtering.wiener(source_mags, mix_spec, iterations), args.repeats)
        line = f"wiener: {args.seconds:.0f} s stereo ({bins} bins x {frames} frames), {iterations} EM iteration(s): " \
               f"filtering.py {ours * 1000:.0f} ms ({args.seconds / ours:.0f}x real time)"
        if norbert is not None and not args.no_norbert:
            v, x = source_mags.transpose(1, 0, 2, 3).copy(), mix_spec.transpose(1, 0, 2).copy()    # frames first
            start = time.perf_counter()
            norbert.wiener(v, x, iterations)
            theirs = time.perf_counter() - start
            line += f", norbert {theirs * 1000:.0f} ms ({theirs / ours:.0f}x slower)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
