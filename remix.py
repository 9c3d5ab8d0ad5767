"""Online random remixing: every training example is a new mixture made from the training songs' stems.

An example is one model window cut at a free sample offset (not the fixed window grid) from:
    vocals          one song's or clip's vocal stem (songs drawn by source family first, then
                    uniformly, so 80 MUSDB18 songs are not drowned by 670 MIR-1K clips), or
                    silence for a share of vocal-free examples
    accompaniment   drums, bass and other each from a random MUSDB18 song (each dropped with
                    probability stem_dropout, never all three), or one MIR-1K-style accompaniment
each part with a random gain. A share of examples (`coherent`) takes every part from one song at one
offset instead: the song's real mix, re-balanced by the gains. The STFT is linear, so only the vocal and accompaniment sums are
transformed and the mixture spectrum is their sum: the mixture window is exactly the sum of its
sources' windows. A batch depends only on (seed, batch number), so a resumed run sees the same data.

    python remix.py --sources data/full            # windows/s of the sampler alone, and a figure
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import audio
from sources import MUSDB_STEMS, SourceStore


@dataclass
class RemixConfig:
    """The remix recipe (train.py fills it from --remix-* options)."""
    vocal_free: float = 0.1             # share of examples with silent vocals
    stems_share: float = 0.67           # share of accompaniments made of MUSDB18 stems (where there are any)
    gain_low: float = 0.25              # each part's gain is uniform in [gain_low, gain_high]
    gain_high: float = 1.25
    stem_dropout: float = 0.1           # chance that a MUSDB18 stem is left out
    coherent: float = 0.0               # share of examples whose parts all come from one song at one offset


def add_remix_args(parser: argparse.ArgumentParser) -> None:
    """--online-remix and its recipe options (train.py)."""
    g = parser.add_argument_group("online remixing (instead of the fixed windows and splice/blackout)")
    g.add_argument("--online-remix", type=Path, default=None, metavar="SOURCES",
                   help="train on examples remixed on the fly from this sources.h5 (or its folder), made by "
                        "data_prep.py --sources; validation stays the caches' validation songs")
    d = RemixConfig()
    g.add_argument("--remix-vocal-free", type=float, default=d.vocal_free, help="share of vocal-free examples")
    g.add_argument("--remix-stems-share", type=float, default=d.stems_share,
                   help="share of accompaniments built from MUSDB18 drums/bass/other rather than one "
                        "MIR-1K-style accompaniment")
    g.add_argument("--remix-gain", type=float, nargs=2, default=(d.gain_low, d.gain_high), metavar=("LOW", "HIGH"),
                   help="range of each part's random gain")
    g.add_argument("--remix-stem-dropout", type=float, default=d.stem_dropout,
                   help="chance that each MUSDB18 stem is left out of an accompaniment")
    g.add_argument("--remix-coherent", type=float, default=d.coherent,
                   help="share of examples whose vocals and accompaniment come from one song at one offset: "
                        "its real mix, re-balanced by the per-part gains (0 = every part from a random song)")
    g.add_argument("--remix-examples", type=int, default=0,
                   help="examples per epoch (0 = --steps-per-epoch batches, else as many as the training caches have windows)")


def config_from_args(args) -> RemixConfig:
    return RemixConfig(vocal_free=args.remix_vocal_free, stems_share=args.remix_stems_share,
                       gain_low=args.remix_gain[0], gain_high=args.remix_gain[1],
                       stem_dropout=args.remix_stem_dropout, coherent=args.remix_coherent)


class RemixSampler:
    """Batches of freshly mixed windows from a SourceStore.

    Args:
        store: the training songs' stems.
        config: the recipe.
        seed: batch k of a sampler is a function of (seed, k) only.
    """

    def __init__(self, store: SourceStore, config: RemixConfig | None = None, seed: int = 0):
        self.store, self.config, self.seed = store, config or RemixConfig(), seed
        vocal_songs = store.songs_with("vocals")
        families = sorted(set(store.source[vocal_songs]))
        self.vocal_families = [vocal_songs[store.source[vocal_songs] == f] for f in families]
        self.stem_songs = {stem: store.songs_with(stem) for stem in MUSDB_STEMS}
        self.accomp_songs = store.songs_with("accompaniment")
        self.has_stems = all(len(v) for v in self.stem_songs.values())
        if not self.has_stems and not len(self.accomp_songs):
            raise ValueError(f"{store.path}: no accompaniment to remix with (neither MUSDB18 stems nor "
                             "MIR-1K-style accompaniments)")

    def _offset(self, rng, song: int) -> int:
        spare = int(self.store.length[song]) - audio.EXCERPT_SAMPLES
        return int(rng.integers(spare + 1)) if spare > 0 else 0

    def _excerpt(self, rng, stem: str, songs: np.ndarray) -> np.ndarray:
        song = int(songs[rng.integers(len(songs))])
        return self.store.read(stem, song, self._offset(rng, song), audio.EXCERPT_SAMPLES)

    def _stems_mix(self, rng, excerpt) -> np.ndarray:
        """An accompaniment of MUSDB18 stems: each kept one (stem dropout, never all three left out)
        times a random gain; excerpt(stem) gives the stem's samples."""
        keep = rng.random(len(MUSDB_STEMS)) >= self.config.stem_dropout
        if not keep.any():
            keep[rng.integers(len(MUSDB_STEMS))] = True
        accomp = np.zeros(audio.EXCERPT_SAMPLES, np.float32)
        for stem, kept in zip(MUSDB_STEMS, keep):
            if kept:
                accomp += self._gain(rng) * excerpt(stem)
        return accomp

    def _coherent(self, rng) -> tuple[np.ndarray, np.ndarray]:
        """(vocal, accompaniment) of one vocal song at one offset: its real mix with every part's gain
        drawn anew (the parts keep their key, tempo and timing, which remixes across songs lose)."""
        family = self.vocal_families[rng.integers(len(self.vocal_families))]
        song = int(family[rng.integers(len(family))])
        offset, n = self._offset(rng, song), audio.EXCERPT_SAMPLES
        vocal = np.zeros(n, np.float32)
        if rng.random() >= self.config.vocal_free:
            vocal = self._gain(rng) * self.store.read("vocals", song, offset, n)
        if self.store.start["drums"][song] >= 0:
            accomp = self._stems_mix(rng, lambda stem: self.store.read(stem, song, offset, n))
        else:
            accomp = self._gain(rng) * self.store.read("accompaniment", song, offset, n)
        return vocal, accomp

    def _gain(self, rng) -> float:
        return float(rng.uniform(self.config.gain_low, self.config.gain_high))

    def waveforms(self, batch: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(vocal, accompaniment) excerpts (size, EXCERPT_SAMPLES) of batch number `batch`."""
        cfg = self.config
        rng = np.random.default_rng((self.seed, batch))
        vocals = np.zeros((size, audio.EXCERPT_SAMPLES), np.float32)
        accomp = np.zeros_like(vocals)
        for i in range(size):
            if cfg.coherent > 0 and rng.random() < cfg.coherent:
                vocals[i], accomp[i] = self._coherent(rng)
                continue
            if rng.random() >= cfg.vocal_free:
                family = self.vocal_families[rng.integers(len(self.vocal_families))]
                vocals[i] = self._gain(rng) * self._excerpt(rng, "vocals", family)
            use_stems = self.has_stems and (not len(self.accomp_songs) or rng.random() < cfg.stems_share)
            if use_stems:
                accomp[i] = self._stems_mix(rng, lambda stem: self._excerpt(rng, stem, self.stem_songs[stem]))
            else:
                accomp[i] = self._gain(rng) * self._excerpt(rng, "accompaniment", self.accomp_songs)
        return vocals, accomp

    def _windows(self, batch: int, size: int, spectra: bool) -> tuple[np.ndarray, ...]:
        """(mix_mag, vocal_mag, accomp_mag) windows (size, N_BINS, WINDOW_FRAMES, 1), plus with `spectra`
        the SDR loss's (size, N_BINS, WINDOW_FRAMES, 6): mixture, vocals, accompaniment, real and imaginary.

        A few excerpts at a time from STFT to magnitudes, so their spectra stay in cache (1.5x faster
        than whole-batch arrays); the mixture spectrum is the sum of its sources'."""
        vocals, accomp = self.waveforms(batch, size)
        shape = (size, audio.N_BINS, audio.WINDOW_FRAMES)
        mags = tuple(np.empty((*shape, 1), np.float32) for _ in range(3))
        parts = np.empty((*shape, 6), np.float32) if spectra else None
        for start in range(0, size, audio.STFT_BLOCK):
            block = slice(start, start + audio.STFT_BLOCK)
            vocal_spec, accomp_spec = audio.excerpt_stft(vocals[block]), audio.excerpt_stft(accomp[block])
            for c, (mag, spec) in enumerate(zip(mags, (vocal_spec + accomp_spec, vocal_spec, accomp_spec))):
                np.abs(spec, out=mag[block, ..., 0])
                if spectra:
                    parts[block, ..., 2 * c], parts[block, ..., 2 * c + 1] = spec.real, spec.imag
        return (*mags, parts) if spectra else mags

    def batch(self, batch: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mix_mag, vocal_mag, accomp_mag) windows (size, N_BINS, WINDOW_FRAMES, 1) of batch number `batch`."""
        return self._windows(batch, size, spectra=False)

    def batch_with_spectra(self, batch: int, size: int) -> tuple[np.ndarray, ...]:
        """batch() plus the spectra the SDR loss needs (losses.py): (size, N_BINS, WINDOW_FRAMES, 6),
        mixture, vocals and accompaniment, real and imaginary."""
        return self._windows(batch, size, spectra=True)


def main(argv=None) -> None:
    import time

    from tqdm import tqdm
    p = argparse.ArgumentParser(description="Measure the online remixing sampler alone (windows/s) and plot "
                                            "a few of its examples.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sources", type=Path, default=Path("data/prepared"), help="sources.h5 or its folder")
    p.add_argument("--batches", type=int, default=40, help="batches to time")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="batches made in parallel (as the training pipeline does)")
    p.add_argument("--figure", type=Path, default=None, help="write a figure of 4 examples here")
    args = p.parse_args(argv)
    from concurrent.futures import ThreadPoolExecutor

    import hardware
    hardware.reuse_freed_memory()               # as the training pipelines do (pipeline.batch_reader)
    sampler = RemixSampler(SourceStore(args.sources))
    sampler.batch(0, 2)                         # warm the file handle and FFT plans
    started = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool, tqdm(total=args.batches, unit="batch") as bar:
        for _ in pool.map(lambda k: sampler.batch(k, args.batch_size), range(args.batches)):
            bar.update()
    rate = args.batches * args.batch_size / (time.perf_counter() - started)
    print(f"remix: {rate:.0f} windows/s ({args.threads} threads, batches of {args.batch_size}, "
          f"{len(sampler.store)} songs, {sampler.store.seconds() / 60:.1f} min of stems)")
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        mix, vocal, accomp = sampler.batch(1, 4)
        fig, axes = plt.subplots(3, 4, figsize=(14, 8), sharex=True, sharey=True)
        for j in range(4):
            for row, (name, mag) in enumerate((("mixture", mix), ("vocals", vocal), ("accompaniment", accomp))):
                axes[row, j].imshow(np.log1p(mag[j, ..., 0]), origin="lower", aspect="auto", cmap="magma")
                axes[row, j].set_title(f"example {j + 1}: {name}", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=80)
        print(f"remix: figure -> {args.figure}")


if __name__ == "__main__":
    main()
