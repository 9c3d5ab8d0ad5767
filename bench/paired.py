"""Is system A better than system B on the same songs, or is the difference noise? A paired comparison
of per-song scores: the median difference, wins, a sign test and a bootstrap interval over songs.

    python bench/paired.py /tmp/v21.json#ours-wiener results/channels_valid.json#ours-wiener
    python bench/paired.py "results/ablation.json#RUN_A|wiener0#valid" "results/ablation.json#RUN_B|wiener0#valid"
    python bench/paired.py A1 B1 A2 B2            # two song sets: each, then pooled (per-song differences)

A system is `FILE.json#ROW`: a row of a bench/compare.py JSON (`ours`, `ours-wiener`, `ours/each`,
`spleeter`, ...; default: its first row), or an entry of a bench/ablation.py JSON (`RUN|wienerN`,
then `#valid`, `#test` or `#mir1k`; default valid). Both scripts record per-song values since
session 13; older files hold only medians and are refused with a message.

Why: every choice here is made on 14 validation songs, where a seed alone moves the median by
0.2 dB, and the median over songs ignores how each song moved. The bootstrap resamples songs with
replacement (the same songs for A and B) and reports the 5th-95th percentiles of median(A) -
median(B) and of the mean per-song difference; the verdict follows the latter (an interval that
contains 0: the songs cannot tell the two apart). Several pairs (A1 B1 A2 B2 ...: the MUSDB18
and the MIR-1K validation songs, say) are reported each and pooled: the pooled figures are
per-song differences only, since medians of songs of different sets mean little. The first pair
is the primary set (the product's own kind of songs): the final verdict is the pool's, unless the
primary set's mean difference points the other way, in which case it is "no clear difference"
(a gain on the second set alone does not carry it). This is the rule separate.py's models are
chosen by since session 13 (README, Quality ablation).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scoring import PER_SONG_METRICS  # noqa: E402

BOOTSTRAP = 10000


def load_songs(spec: str, metric: str) -> tuple[str, dict[str, float]]:
    """(label, {song: value}) of one system spec (see the module docstring)."""
    path, _, rest = spec.partition("#")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"paired: {path}: cannot read it as JSON ({exc})")
    if "rows" in data:                                        # bench/compare.py
        row = rest or next(iter(data["rows"]))
        if row not in data["rows"]:
            raise SystemExit(f"paired: {path} has no row {row!r}; its rows: {', '.join(data['rows'])}")
        scored = data["rows"][row]
        label = f"{data.get('run', path)} {row} ({data.get('split', '?')})"
    else:                                                     # bench/ablation.py
        key, _, song_set = rest.partition("#")
        song_set = song_set or "valid"
        if key not in data:
            raise SystemExit(f"paired: {path} has no entry {key!r} (keys look like RUN|wiener0)")
        scored = data[key]["scores"].get(song_set, {})
        label = f"{key} ({song_set})"
    songs = scored.get("songs", {}).get(metric)
    if not songs:
        raise SystemExit(f"paired: {spec}: no per-song {metric} recorded (scored before the script recorded it); "
                         "score it again with bench/compare.py or bench/ablation.py")
    return label, songs


def paired_difference(a: dict[str, float], b: dict[str, float], n_boot: int = BOOTSTRAP, seed: int = 0) -> dict:
    """Paired statistics of A - B over the songs both score.

    Args:
        a, b: {song: value} of two systems.
        n_boot: bootstrap resamples of the songs.
        seed: the bootstrap's random seed (the result is deterministic).
    """
    from scipy.stats import binomtest
    songs = sorted(set(a) & set(b))
    if len(songs) < 2:
        raise ValueError(f"only {len(songs)} song(s) scored by both systems: nothing to compare")
    x, y = np.array([a[s] for s in songs]), np.array([b[s] for s in songs])
    diff = x - y
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(songs), (n_boot, len(songs)))
    boot_median = np.median(x[picks], axis=1) - np.median(y[picks], axis=1)
    boot_mean = np.mean(diff[picks], axis=1)
    wins, losses = int(np.sum(diff > 0)), int(np.sum(diff < 0))
    low, high = np.percentile(boot_mean, [5, 95])
    return {"songs": len(songs), "only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)),
            "median_a": float(np.median(x)), "median_b": float(np.median(y)),
            "median_difference": float(np.median(x) - np.median(y)), "median_of_differences": float(np.median(diff)),
            "mean_difference": float(np.mean(diff)), "wins": wins, "losses": losses,
            "sign_test_p": float(binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0,
            "median_bootstrap_90": [float(v) for v in np.percentile(boot_median, [5, 95])],
            "mean_bootstrap_90": [float(low), float(high)], "p_a_better": float(np.mean(boot_mean > 0)),
            "verdict": "A better" if low > 0 else "B better" if high < 0 else "no clear difference"}


def combined_verdict(pooled: dict, primary: dict) -> str:
    """The pool's verdict, unless the primary (first) set's mean difference points the other way."""
    against = (pooled["verdict"] == "A better" and primary["mean_difference"] < 0) or \
        (pooled["verdict"] == "B better" and primary["mean_difference"] > 0)
    return "no clear difference (the pool and the first set disagree)" if against else pooled["verdict"]


def report(r: dict, metric: str, pooled: bool = False) -> None:
    """Print one comparison's figures (pooled: the per-song differences only)."""
    for side, missing in (("A", r["only_a"]), ("B", r["only_b"])):
        if missing:
            print(f"paired: warning: {len(missing)} song(s) only in {side}, left out: {', '.join(missing[:5])}"
                  + (" ..." if len(missing) > 5 else ""), file=sys.stderr)
    medians = "" if pooled else (f"median A {r['median_a']:.2f}, B {r['median_b']:.2f}, difference "
                                 f"{r['median_difference']:+.2f} dB (bootstrap 90 % [{r['median_bootstrap_90'][0]:+.2f}, "
                                 f"{r['median_bootstrap_90'][1]:+.2f}]); ")
    print(f"{metric} over {r['songs']} songs: {medians}per-song difference A - B: median "
          f"{r['median_of_differences']:+.2f}, mean {r['mean_difference']:+.2f} dB (bootstrap 90 % "
          f"[{r['mean_bootstrap_90'][0]:+.2f}, {r['mean_bootstrap_90'][1]:+.2f}]); A wins {r['wins']} songs, B "
          f"{r['losses']} (sign test p = {r['sign_test_p']:.3f}): {r['verdict']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("systems", nargs="+", metavar="A B",
                   help="pairs of systems, A then B: FILE.json#ROW (compare) or FILE.json#RUN|wienerN#SET (ablation)")
    p.add_argument("--metric", default="vocals_SDR", choices=PER_SONG_METRICS, help="per-song value compared")
    p.add_argument("--bootstrap", type=int, default=BOOTSTRAP, help="bootstrap resamples of the songs")
    args = p.parse_args()
    if len(args.systems) % 2:
        p.error("systems come in pairs: A B [A2 B2 ...]")
    pooled_a, pooled_b, primary = {}, {}, None
    for k in range(0, len(args.systems), 2):
        (label_a, a), (label_b, b) = (load_songs(spec, args.metric) for spec in args.systems[k:k + 2])
        try:
            r = paired_difference(a, b, args.bootstrap)
        except ValueError as exc:
            raise SystemExit(f"paired: {exc}")
        print(f"A = {label_a}\nB = {label_b}")
        report(r, args.metric)
        primary = primary or r
        pooled_a.update({f"{k}:{song}": v for song, v in a.items()})
        pooled_b.update({f"{k}:{song}": v for song, v in b.items()})
    verdict = r["verdict"]
    if len(args.systems) > 2:
        r = paired_difference(pooled_a, pooled_b, args.bootstrap)
        print(f"pooled over {len(args.systems) // 2} pairs:")
        report(r, args.metric, pooled=True)
        verdict = combined_verdict(r, primary)
    print(f"paired: {verdict}")


if __name__ == "__main__":
    main()
