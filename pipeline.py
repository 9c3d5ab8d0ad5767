"""Input pipelines streamed from the HDF5 caches (or remixed on the fly from sources.h5).

Training: per-epoch augmentation recipes (augment.py) -> windows read one by one from the
cache -> batch -> per-window normalization (normalize.py) and labels, NumPy work in the same
reader thread -> prefetch. Nothing is materialized: RAM holds a few batches whatever the cache
size. Validation: the held-out songs' windows in order, un-augmented.

Two implementations of the same batches: tf.data (the TensorFlow backend, the default) and
keras.utils.PyDataset over NumPy (`numpy_train_dataset` / `numpy_eval_dataset`), which Keras
feeds to any backend: JAX or PyTorch training on a machine without TensorFlow.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import numpy as np

import audio
import augment
import losses
import normalize
import targets
from augment import PAPER_MIX
from scoring import accomp_mag_windows

# batches read in parallel (h5py serializes reads; the NumPy work overlaps): 2 on a small CPU, where the
# model wants the cores; more on a GPU machine's many cores, where the SDR loss's label spectra would
# otherwise starve the GPU (~50-100 examples/s per reader thread)
READERS = 2 if (os.cpu_count() or 1) <= 4 else min(8, (os.cpu_count() or 1) // 2)


@dataclass
class PipelineConfig:
    """What a pipeline needs to know; train.py fills it (by keyword) from its arguments."""
    norm: str = "frequency"
    scaler: str = "minmax"
    target: str = "direct"
    batch_size: int = 64
    seed: int = 0
    augment: bool = True
    mix: object = PAPER_MIX
    splice_across_songs: bool = False
    drop_silent_vocals: bool = False
    loss: str = "mae"
    source_weights: dict | None = None      # {source: recipes per window}, augment.epoch_recipes
    teacher: object = None                  # distill.Teacher: blends the SDR loss's references (training only)
    vocal_gain_db: float = 0.0              # augment.apply_vocal_gain range, +-dB (fixed windows only)


def taught(cfg: PipelineConfig, mix_mag: np.ndarray, spectra: np.ndarray | None) -> np.ndarray | None:
    """A training batch's label spectra, blended towards the run's teacher when it has one (distill.py)."""
    if cfg.teacher is None or spectra is None:
        return spectra
    return cfg.teacher.blend(mix_mag, spectra).astype(np.float32, copy=False)


def model_io(mix_mag, vocal_mag, cfg: PipelineConfig, accomp_mag=None, spectra=None):
    """(model input, training label) for a batch of raw magnitudes: NumPy arrays in, NumPy out (the
    training pipelines call it in their reader threads), tensors in, tensors out (normalize.namespace).

    spectra: for the SDR loss, the raw (mixture, vocals, accompaniment) real/imaginary channels
    (remix.RemixSampler.batch_with_spectra), appended to the label as losses.py expects.
    """
    stats = normalize.fit(mix_mag, cfg.norm, cfg.scaler)
    label = targets.label(mix_mag, vocal_mag, stats, cfg.target, accomp_mag)
    if losses.needs_spectra(cfg.loss):
        ops = normalize.namespace(label, spectra)
        label = ops.concatenate([label, spectra[..., :losses.spectra_channels(len(targets.sources(cfg.target)))]],
                                axis=-1)
    return normalize.transform(mix_mag, stats), label


def label_channels(cfg: PipelineConfig) -> int:
    """Channels of model_io's label: one per source the target estimates, plus the SDR loss's spectra."""
    n_sources = len(targets.sources(cfg.target))
    return n_sources + (losses.spectra_channels(n_sources) if losses.needs_spectra(cfg.loss) else 0)


def _model_io_map(read, cfg: PipelineConfig):
    """A tf.data map function: global batch number -> (model input, label), all of it NumPy work in
    the reader thread (read, then model_io), so TensorFlow's own ops do not compete for the cores."""
    import tensorflow as tf
    shape = (cfg.batch_size, *audio.WINDOW_SHAPE)

    def load(global_batch):
        x, y = tf.numpy_function(lambda k: _numpy_io(read(int(k)), cfg), [global_batch], (tf.float32,) * 2)
        return tf.ensure_shape(x, shape), tf.ensure_shape(y, (*shape[:-1], label_channels(cfg)))
    return load


def two_sources(cfg: PipelineConfig) -> bool:
    return len(targets.sources(cfg.target)) == 2


def epoch_size(store, cfg: PipelineConfig) -> int:
    """Examples per epoch (before rounding up to whole batches)."""
    return len(augment.epoch_recipes(store, 0, cfg.seed, cfg.mix, cfg.augment, cfg.drop_silent_vocals,
                                     cfg.splice_across_songs, shuffle=False, source_weights=cfg.source_weights))


class _EpochRecipes:
    """Recipes of the epoch being read, made once per epoch and shared by the reader threads."""

    def __init__(self, store, cfg: PipelineConfig, n_examples: int):
        self.store, self.cfg, self.n_examples = store, cfg, n_examples
        self.lock = threading.Lock()
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, epoch: int) -> np.ndarray:
        with self.lock:
            if epoch not in self.cache:
                cfg = self.cfg
                recipes = augment.epoch_recipes(self.store, epoch, cfg.seed, cfg.mix, cfg.augment,
                                                cfg.drop_silent_vocals, cfg.splice_across_songs,
                                                source_weights=cfg.source_weights)
                # topped up with its own first recipes to fill the last batch: nothing is dropped
                self.cache = {epoch: np.resize(recipes, self.n_examples)}
            return self.cache[epoch]


def fixed_window_batch(store, cfg: PipelineConfig, recipes_of: _EpochRecipes, reader: WindowReader,
                       steps_per_epoch: int, global_batch: int) -> dict[str, np.ndarray]:
    """Training batch `global_batch` of a fixed-window store: the windows window_names(cfg) names,
    each recipe's splice or blackout applied, then the vocal gain and the teacher, if any."""
    names = window_names(cfg)
    epoch, batch = divmod(int(global_batch), steps_per_epoch)
    recipes = recipes_of(epoch)[batch * cfg.batch_size:(batch + 1) * cfg.batch_size]
    read_names = names + (("spectra",) if cfg.vocal_gain_db > 0 and "spectra" not in names else ())
    # with the spectra read, the accompaniment's magnitude is their channels 4-5 (splices and blackouts
    # act alike on both): one STFT of the accompaniment per window, not two
    accomp_from_spectra = "accomp_mag" in read_names and "spectra" in read_names
    if accomp_from_spectra:
        read_names = tuple(name for name in read_names if name != "accomp_mag")
    arrays = dict(zip(read_names, augment.make_batch(store, recipes, read_names, reader.read)))
    if accomp_from_spectra:
        # (real, imaginary) pairs seen as complex64, so the magnitude is WindowReader's to the bit
        accomp_spec = np.ascontiguousarray(arrays["spectra"][..., 4:6]).view(np.complex64)
        arrays["accomp_mag"] = np.abs(accomp_spec)
    if cfg.vocal_gain_db > 0:
        gains = augment.vocal_gains(cfg.seed, int(global_batch), len(recipes), cfg.vocal_gain_db)
        arrays = augment.apply_vocal_gain(arrays, gains)
    if "spectra" in names:
        arrays["spectra"] = taught(cfg, arrays["mix_mag"], arrays["spectra"])
    return {name: arrays[name] for name in names}


def train_dataset(store, cfg: PipelineConfig, epochs: int, initial_epoch: int = 0,
                  steps_per_epoch: int | None = None):
    """Training dataset of epochs initial_epoch..epochs-1, each exactly steps_per_epoch batches.

    A range of global batch numbers is mapped, in order, to (epoch, batch) and read by a
    numpy_function: 4x the throughput of Dataset.from_generator, and the sequence depends on
    (seed, epoch) only, so --resume continues it exactly.

    Args:
        store: cache.WindowStore of training windows.
        cfg: pipeline settings.
        epochs: last epoch (exclusive), as Keras counts them.
        initial_epoch: first epoch to produce (for --resume).
        steps_per_epoch: batches per epoch; default = a whole epoch, the last batch topped up.
    """
    import tensorflow as tf
    steps = steps_per_epoch or math.ceil(epoch_size(store, cfg) / cfg.batch_size)
    ds = tf.data.Dataset.range(initial_epoch * steps, epochs * steps)
    ds = ds.map(_model_io_map(batch_reader(store, cfg, steps), cfg), num_parallel_calls=READERS, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def remix_dataset(sampler, cfg: PipelineConfig, epochs: int, steps_per_epoch: int, initial_epoch: int = 0):
    """Training dataset of online remixed batches (remix.RemixSampler), epochs initial_epoch..epochs-1.

    Batch k is a function of (seed, k) only, so --resume continues the same sequence.
    """
    import tensorflow as tf
    ds = tf.data.Dataset.range(initial_epoch * steps_per_epoch, epochs * steps_per_epoch)
    ds = ds.map(_model_io_map(batch_reader(sampler, cfg, steps_per_epoch), cfg), num_parallel_calls=READERS,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def batch_reader(source, cfg: PipelineConfig, steps_per_epoch: int):
    """global batch number -> (mix, vocal, accompaniment or None, label spectra or None) raw windows.

    Args:
        source: a cache.WindowStore (fixed windows, augment recipes) or a remix.RemixSampler.
        cfg: pipeline settings.
        steps_per_epoch: batches per epoch (fixed windows: which epoch's recipes a batch reads).
    """
    import hardware
    # every batch allocates the same 16-100 MB arrays: reused, not mapped and zeroed by the kernel
    # again each time (1.2-1.4x the remixing pipeline's windows/s on 2 cores)
    hardware.reuse_freed_memory()
    if hasattr(source, "batch_with_spectra"):
        def remixed(global_batch: int) -> tuple:
            if losses.needs_spectra(cfg.loss):
                mix, vocal, accomp, spec = source.batch_with_spectra(global_batch, cfg.batch_size)
                return mix, vocal, accomp, taught(cfg, mix, spec)
            return (*source.batch(global_batch, cfg.batch_size), None)
        return remixed
    recipes_of, reader = _EpochRecipes(source, cfg, steps_per_epoch * cfg.batch_size), WindowReader(source)

    def fixed(global_batch: int) -> tuple:
        arrays = fixed_window_batch(source, cfg, recipes_of, reader, steps_per_epoch, global_batch)
        return arrays["mix_mag"], arrays["vocal_mag"], arrays.get("accomp_mag"), arrays.get("spectra")
    return fixed


def window_names(cfg: PipelineConfig) -> tuple[str, ...]:
    """The windows a training batch needs: the mixture and vocals, plus the accompaniment for
    two-source targets and the raw spectra for the SDR loss."""
    return ("mix_mag", "vocal_mag") + (("accomp_mag",) if two_sources(cfg) else ()) + \
        (("spectra",) if losses.needs_spectra(cfg.loss) else ())


class WindowReader:
    """store.read plus the windows a cache does not store, derived from the song's audio: "accomp_mag"
    and "spectra" (as song_spectra). Only the window's own samples are transformed (audio.excerpt_stft
    of the centred STFT's frames), so a random window costs one window's STFT, not a song's."""

    def __init__(self, store):
        self.store = store

    def _source_spec(self, wave: str, index: int) -> np.ndarray:
        """The complex (N_BINS, WINDOW_FRAMES) window of a song's `wave`, zero past its last frame."""
        song, k = int(self.store.song_id[index]), int(self.store.window_index[index])
        start = k * audio.WINDOW_SAMPLES - audio.N_FFT // 2
        excerpt = self.store.read_wave_range(wave, song, start, audio.EXCERPT_SAMPLES)
        spec = audio.excerpt_stft(excerpt[None])[0]
        spec[:, int(self.store.valid_frames[index]):] = 0          # as audio.to_windows pads
        return spec

    def read(self, name: str, index: int) -> np.ndarray:
        if name == "accomp_mag":
            return np.abs(self._source_spec("accomp_wave", index))[..., None]
        if name == "spectra":
            out = np.empty((*audio.WINDOW_SHAPE[:-1], 6), np.float32)
            mix_mag, mix_phase = self.store.read("mix_mag", index)[..., 0], self.store.read("mix_phase", index)[..., 0]
            np.multiply(mix_mag, np.cos(mix_phase), out=out[..., 0])     # real arithmetic: no complex exp
            np.multiply(mix_mag, np.sin(mix_phase), out=out[..., 1])
            for c, wave in ((2, "vocal_wave"), (4, "accomp_wave")):
                spec = self._source_spec(wave, index)
                out[..., c], out[..., c + 1] = spec.real, spec.imag
            return out
        return self.store.read(name, index)


def song_spec_windows(store, song: int, wave: str) -> np.ndarray:
    """A cached song's complex STFT windows of one of its waves (accomp_wave or vocal_wave)."""
    windows, _ = audio.to_windows(audio.stft(store.read_wave(wave, song)))
    return windows[:store.songs["n_windows"][song]]


def song_spectra(store, song: int) -> np.ndarray:
    """The SDR loss's label spectra of a cached song: (n, N_BINS, WINDOW_FRAMES, 6) as in
    remix.RemixSampler.batch_with_spectra (mixture from its stored magnitude and phase)."""
    mix = store.read_song("mix_mag", song)[..., 0] * np.exp(1j * store.read_song("mix_phase", song)[..., 0])
    specs = (mix, song_spec_windows(store, song, "vocal_wave"), song_spec_windows(store, song, "accomp_wave"))
    return np.stack([part for s in specs for part in (s.real, s.imag)], axis=-1).astype(np.float32)


def eval_dataset(store, cfg: PipelineConfig):
    """All windows of a store in order, un-augmented, normalized: for validation."""
    import tensorflow as tf
    both, spectra = two_sources(cfg), losses.needs_spectra(cfg.loss)

    def read_song(song):         # one contiguous read per song
        song = int(song)
        mix, vocal = store.read_song("mix_mag", song), store.read_song("vocal_mag", song)
        return (mix, vocal, accomp_mag_windows(store, song) if both else vocal,
                song_spectra(store, song) if spectra else vocal)

    def load(song):
        arrays = tf.numpy_function(read_song, [song], (tf.float32,) * 4)
        shapes = [(None, *audio.WINDOW_SHAPE)] * 3 + [(None, *audio.WINDOW_SHAPE[:-1], 6 if spectra else 1)]
        return tuple(tf.ensure_shape(x, s) for x, s in zip(arrays, shapes))

    ds = tf.data.Dataset.range(store.n_songs).map(load).unbatch().batch(cfg.batch_size)
    ds = ds.map(lambda m, v, a, s: model_io(m, v, cfg, a if both else None, s if spectra else None),
                num_parallel_calls=tf.data.AUTOTUNE)
    batches = math.ceil(len(store) / cfg.batch_size)
    # A known length lets Keras stop cleanly instead of warning that the input ran out.
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------- the same batches without TensorFlow
def _song_arrays(store, song: int, cfg: PipelineConfig) -> tuple:
    """A validation song's (mix, vocal, accompaniment or None, spectra or None) windows."""
    both, spectra = two_sources(cfg), losses.needs_spectra(cfg.loss)
    return (store.read_song("mix_mag", song), store.read_song("vocal_mag", song),
            accomp_mag_windows(store, song) if both else None, song_spectra(store, song) if spectra else None)


def _numpy_io(arrays: tuple, cfg: PipelineConfig) -> tuple[np.ndarray, np.ndarray]:
    mix, vocal, accomp, spectra = arrays
    x, y = model_io(mix, vocal, cfg, accomp, spectra)
    return np.asarray(x), np.asarray(y)


def numpy_train_dataset(source, cfg: PipelineConfig, steps_per_epoch: int, initial_epoch: int = 0):
    """train_dataset / remix_dataset as a keras.utils.PyDataset: batch k of epoch e is global batch
    e * steps + k, made by the same code, so a run's data does not depend on the backend.

    Args:
        source: a cache.WindowStore (fixed windows, augment recipes) or a remix.RemixSampler.
        cfg: pipeline settings.
        steps_per_epoch: batches per epoch.
        initial_epoch: the first epoch (for --resume).
    """
    import keras
    read = batch_reader(source, cfg, steps_per_epoch)

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=READERS, use_multiprocessing=False)
            self.epoch = initial_epoch

        def __len__(self) -> int:
            return steps_per_epoch

        def __getitem__(self, index: int):
            return _numpy_io(read(self.epoch * steps_per_epoch + int(index)), cfg)

        def on_epoch_end(self) -> None:
            self.epoch += 1

    return Batches()


def numpy_eval_dataset(store, cfg: PipelineConfig):
    """eval_dataset as a keras.utils.PyDataset: every window of the store in order, in batches."""
    import functools

    import keras
    windows = [(song, k) for song in range(store.n_songs) for k in range(store.songs["n_windows"][song])]
    song_arrays = functools.lru_cache(maxsize=4)(lambda song: _song_arrays(store, song, cfg))

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return math.ceil(len(windows) / cfg.batch_size)

        def __getitem__(self, index: int):
            picked = windows[index * cfg.batch_size:(index + 1) * cfg.batch_size]
            parts = [[song_arrays(song)[a][k] if song_arrays(song)[a] is not None else None for song, k in picked]
                     for a in range(4)]
            return _numpy_io(tuple(np.stack(p) if p[0] is not None else None for p in parts), cfg)

    return Batches()
