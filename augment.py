"""Splice and blackout augmentation (paper Algorithms 1 and 2) and the training-set composition.

Augmentation works on un-normalized magnitudes, so one cache serves every scaler, and it is
described by per-epoch *recipes* (which windows, which operation) rather than materialized:
the training pipeline reads the windows a recipe names and applies it on the fly.

    splice:   last 64 frames of window i + first 64 frames of window i+1 (same song by default)
    blackout: 64 consecutive frames zeroed in mixture and vocal, start drawn from 0..64
    vocal gain (--vocal-gain-db, off by default): the vocals scaled, the mixture remade around them

    python augment.py --data data/prepared            # composition of an epoch, and a figure
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import audio

HALF = audio.WINDOW_FRAMES // 2
BLACKOUT_FRAMES = 64
MAX_BLACKOUT_START = 64            # inclusive: "random integer from 0 to 64"
SILENT_VOCAL_SUM = 100.0           # released code: sum |vocal waveform| < 100 over a window
ORIGINAL, SPLICE, BLACKOUT = 0, 1, 2
KIND_NAMES = ("original", "splice", "blackout")
PAPER_MIX = (40.0, 40.0, 20.0)     # original / splice / blackout shares of the paper's training set
MIX_PRESETS = {"paper": PAPER_MIX, "released": "released"}
VOCAL_GAIN_STREAM = 7             # keeps the gains' random stream apart from the recipes' (seed, epoch)
RECIPE_DTYPE = np.dtype([("kind", np.int8), ("first", np.int64), ("second", np.int64), ("start", np.int16)])


def splice(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Last HALF frames of `first` followed by the first HALF frames of `second`.

    Works on (..., bins, frames, channels) arrays.
    """
    return np.concatenate([first[..., HALF:, :], second[..., :HALF, :]], axis=-2)


def blackout(window: np.ndarray, start: int) -> np.ndarray:
    """Copy of `window` with BLACKOUT_FRAMES frames zeroed from `start`."""
    out = np.array(window, copy=True)
    out[..., start:start + BLACKOUT_FRAMES, :] = 0
    return out


def parse_mix(text: str) -> tuple[float, float, float] | str:
    """'40/40/20' -> (40, 40, 20); 'paper' or 'released' presets."""
    if text in MIX_PRESETS:
        return MIX_PRESETS[text]
    try:
        parts = tuple(float(x) for x in text.split("/"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or parts[0] <= 0 or min(parts) < 0:
        raise argparse.ArgumentTypeError(
            f"--mix wants ORIGINAL/SPLICE/BLACKOUT shares like 40/40/20, or 'paper' / 'released'; got {text!r}")
    return parts


def composition(n_original: int, mix) -> tuple[int, int, int]:
    """Counts of (original, spliced, blackout) examples per epoch for n usable windows.

    Shares a/b/c give b/a and c/a examples per original (40/40/20: n, n, n/2); 'released'
    gives the released code's n, (n-1)//2, n//4.
    """
    if mix == "released":
        return n_original, max(n_original - 1, 0) // 2, n_original // 4
    o, s, b = mix
    return n_original, int(round(n_original * s / o)), int(round(n_original * b / o))


def usable_windows(store, drop_silent_vocals: bool = False) -> np.ndarray:
    """Indices of windows used as originals (optionally dropping near-silent vocals)."""
    keep = np.ones(len(store), dtype=bool)
    if drop_silent_vocals:
        keep &= store.vocal_abs_sum >= SILENT_VOCAL_SUM
    return np.flatnonzero(keep)


def splice_pairs(store, usable: np.ndarray, across_songs: bool = False) -> np.ndarray:
    """Candidate (i, i+1) pairs whose spliced window is made of real frames only.

    Within one song by default; `across_songs` reproduces the released code, which spliced
    consecutive windows wherever they were.
    """
    first = usable[:-1][np.diff(usable) == 1]
    second = first + 1
    ok = store.valid_frames[second] >= HALF
    if not across_songs:
        ok &= store.song_id[first] == store.song_id[second]
    return np.stack([first[ok], second[ok]], axis=1)


def _cycle(rng: np.random.Generator, n_items: int, count: int) -> np.ndarray:
    """`count` indices into n_items, each used once before any repeats (fresh order each pass)."""
    if n_items == 0 or count == 0:
        return np.zeros(0, dtype=np.int64)
    passes = -(-count // n_items)
    return np.concatenate([rng.permutation(n_items) for _ in range(passes)])[:count]


def parse_source_weight(text: str) -> tuple[str, int]:
    """'musdb=8' -> ('musdb', 8): each window of that source appears in 8 recipes per epoch."""
    name, _, count = text.partition("=")
    if not name or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"--source-weight wants SOURCE=COPIES with COPIES >= 1, e.g. musdb=8; "
                                         f"got {text!r}")
    return name, int(count)


def window_copies(store, source_weights: dict[str, int] | None) -> np.ndarray:
    """Recipes per epoch for each window of the store (1 unless its song's source is weighted)."""
    copies = np.ones(len(store), dtype=np.int64)
    if not source_weights:
        return copies
    sources = np.asarray(store.songs["source"])
    unknown = sorted(set(source_weights) - set(sources.tolist()))
    if unknown:
        raise ValueError(f"--source-weight names {unknown}, but the training caches hold the sources "
                         f"{sorted(set(sources.tolist()))}")
    per_song = np.array([source_weights.get(s, 1) for s in sources], dtype=np.int64)
    return per_song[store.song_id]


def _recipes(store, rng: np.random.Generator, usable: np.ndarray, mix, augment: bool,
             across_songs: bool) -> np.ndarray:
    """Unshuffled recipes made from the windows `usable` (originals, splices, blackouts)."""
    n_orig, n_splice, n_black = composition(len(usable), mix) if augment else (len(usable), 0, 0)
    pairs = splice_pairs(store, usable, across_songs)
    if n_splice and len(pairs) == 0:
        n_splice = 0          # e.g. every song is a single window: nothing can be spliced
    recipes = np.zeros(n_orig + n_splice + n_black, dtype=RECIPE_DTYPE)
    recipes["kind"][:n_orig] = ORIGINAL
    recipes["first"][:n_orig] = usable
    chosen = pairs[_cycle(rng, len(pairs), n_splice)]
    part = slice(n_orig, n_orig + n_splice)
    recipes["kind"][part] = SPLICE
    if n_splice:
        recipes["first"][part], recipes["second"][part] = chosen[:, 0], chosen[:, 1]
    part = slice(n_orig + n_splice, None)
    recipes["kind"][part] = BLACKOUT
    recipes["first"][part] = usable[_cycle(rng, len(usable), n_black)]
    recipes["start"][part] = rng.integers(0, MAX_BLACKOUT_START + 1, size=n_black)
    return recipes


def epoch_recipes(store, epoch: int, seed: int, mix=PAPER_MIX, augment: bool = True,
                  drop_silent_vocals: bool = False, across_songs: bool = False,
                  shuffle: bool = True, source_weights: dict[str, int] | None = None) -> np.ndarray:
    """The examples of one epoch, deterministic in (seed, epoch).

    Args:
        store: a cache.WindowStore of training windows.
        epoch: epoch number (changes splice choices, blackout starts and order).
        seed: run seed.
        mix: (original, splice, blackout) shares or 'released'.
        augment: False gives the originals only.
        drop_silent_vocals: drop windows whose vocal is nearly silent (released code).
        across_songs: allow splices across song boundaries (released code).
        shuffle: shuffle the examples.
        source_weights: {source: copies}, e.g. {"musdb": 8}: that source's windows get `copies`
            sets of recipes per epoch, each with its own splices and blackouts (oversampling the
            songs like the test set, where MIR-1K clips are 90 % of the windows).
    """
    rng = np.random.default_rng([seed, epoch])
    usable = usable_windows(store, drop_silent_vocals)
    parts = [_recipes(store, rng, usable, mix, augment, across_songs)]
    copies = window_copies(store, source_weights)
    for copy in range(1, int(copies.max())):
        extra_rng = np.random.default_rng([seed, epoch, copy])
        parts.append(_recipes(store, extra_rng, usable[copies[usable] > copy], mix, augment, across_songs))
    recipes = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return recipes[rng.permutation(len(recipes))] if shuffle else recipes


def make_example(store, recipe, names=("mix_mag", "vocal_mag"), read=None) -> tuple[np.ndarray, ...]:
    """The windows `names` (N_BINS, WINDOW_FRAMES, channels) of one recipe, each spliced or blacked
    out alike. read(name, index) reads a window (default: store.read; pipeline.WindowReader adds
    derived arrays such as the accompaniment)."""
    read = read or store.read
    arrays = [read(name, recipe["first"]) for name in names]
    kind = recipe["kind"]
    if kind == SPLICE:
        arrays = [splice(x, read(name, recipe["second"])) for name, x in zip(names, arrays)]
    elif kind == BLACKOUT:
        arrays = [blackout(x, recipe["start"]) for x in arrays]
    return tuple(arrays)


def make_batch(store, recipes: np.ndarray, names=("mix_mag", "vocal_mag"), read=None) -> tuple[np.ndarray, ...]:
    """Batches (len(recipes), N_BINS, WINDOW_FRAMES, channels) of the windows `names` for a list of recipes."""
    examples = [make_example(store, recipe, names, read) for recipe in recipes]
    return tuple(np.stack([example[k] for example in examples]).astype(np.float32, copy=False)
                 for k in range(len(names)))


def vocal_gains(seed: int, batch: int, size: int, max_db: float) -> np.ndarray:
    """Linear vocal gains of a batch, uniform in dB over [-max_db, max_db], deterministic in (seed, batch)."""
    if max_db <= 0:
        return np.ones(size, dtype=np.float32)
    rng = np.random.default_rng([seed, batch, VOCAL_GAIN_STREAM])
    return (10.0 ** (rng.uniform(-max_db, max_db, size) / 20.0)).astype(np.float32)


def apply_vocal_gain(arrays: dict[str, np.ndarray], gains: np.ndarray) -> dict[str, np.ndarray]:
    """The same examples with each one's vocals scaled by its gain and the mixture remade around them.

    The mixture becomes M + (g - 1) V (complex), not g V + A: at g = 1 it is the recorded mixture
    (MUSDB18's is AAC-coded, so it differs slightly from the stems' sum). Needs "spectra" (the
    mixture, vocals and accompaniment real/imaginary channels of pipeline.WindowReader); updates
    "mix_mag", "vocal_mag" and "spectra", leaves "accomp_mag" as it is.
    """
    spectra = arrays["spectra"]
    g = gains.reshape(-1, 1, 1)
    mix = spectra[..., 0] + 1j * spectra[..., 1] + (g - 1) * (spectra[..., 2] + 1j * spectra[..., 3])
    out = dict(arrays)
    out["spectra"] = np.concatenate([np.stack([mix.real, mix.imag], axis=-1), spectra[..., 2:4] * g[..., None],
                                     spectra[..., 4:]], axis=-1).astype(np.float32)
    out["mix_mag"] = np.abs(mix)[..., None].astype(np.float32)
    out["vocal_mag"] = (arrays["vocal_mag"] * g[..., None]).astype(np.float32)
    return out


def plot_examples(store, path: Path, seed: int = 0) -> Path:
    """Figure in the spirit of the paper's Figures 2 and 3: a splice and a blackout."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    pairs = splice_pairs(store, usable_windows(store))
    i, j = pairs[rng.integers(len(pairs))] if len(pairs) else (0, 0)
    start = int(rng.integers(0, MAX_BLACKOUT_START + 1))
    panels = [("window i", store.read("mix_mag", i)), ("window i+1", store.read("mix_mag", j)),
              ("spliced", splice(store.read("mix_mag", i), store.read("mix_mag", j))),
              (f"blackout (start {start})", blackout(store.read("mix_mag", i), start))]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.5), sharey=True)
    for ax, (title, mag) in zip(axes, panels):
        ax.imshow(np.log1p(mag[..., 0]), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(title)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("bin")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def add_augment_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by augment.py and train.py."""
    g = parser.add_argument_group("augmentation")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="splice and blackout augmentation of the training windows")
    g.add_argument("--mix", type=parse_mix, default=parse_mix("paper"),
                   help="original/splice/blackout shares, e.g. 40/40/20 (paper), 4/2/1, or "
                        "'released' (the released code's n, (n-1)//2, n//4)")
    g.add_argument("--splice-across-songs", action="store_true",
                   help="also splice across song boundaries, as the released code did")
    g.add_argument("--drop-silent-vocals", action="store_true",
                   help="drop windows whose vocal waveform sums below 100 (released code)")
    g.add_argument("--source-weight", type=parse_source_weight, action="append", default=[], metavar="SOURCE=COPIES",
                   help="oversample a source of the training caches: each of its windows gets COPIES sets of "
                        "recipes per epoch (e.g. musdb=8; sources: musdb, mir1k, mir1k-extra); repeatable")
    g.add_argument("--vocal-gain-db", type=float, default=0.0, metavar="DB",
                   help="scale each training example's vocals by a gain drawn uniformly from -DB..+DB dB and "
                        "remake its mixture around them (0 = off; fixed windows, not --online-remix)")


def main(argv=None) -> None:
    from cache import WindowStore, resolve_caches
    parser = argparse.ArgumentParser(description="Show the composition of an augmented training epoch "
                                                 "and save a splice / blackout figure.")
    parser.add_argument("--data", nargs="+", default=["data/prepared"], help="cache folders or files")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--figure", type=Path, default=Path("results/augmentation.png"), help="figure path")
    add_augment_args(parser)
    args = parser.parse_args(argv)
    store = WindowStore(resolve_caches(args.data, "train"))
    try:
        recipes = epoch_recipes(store, 0, args.seed, args.mix, args.augment, args.drop_silent_vocals,
                                args.splice_across_songs, source_weights=dict(args.source_weight))
    except ValueError as exc:
        raise SystemExit(f"augment: {exc}")
    counts = np.bincount(recipes["kind"], minlength=3)
    shares = " / ".join(f"{KIND_NAMES[k]} {counts[k]} ({100 * counts[k] / len(recipes):.0f}%)" for k in range(3))
    print(f"augment: {len(store)} training windows from {store.n_songs} songs -> {len(recipes)} examples "
          f"per epoch: {shares}; figure: {plot_examples(store, args.figure, args.seed)}")


if __name__ == "__main__":
    main()
