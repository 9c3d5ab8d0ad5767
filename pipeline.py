"""tf.data input pipelines streamed from the HDF5 caches.

Training: per-epoch augmentation recipes (augment.py) -> windows read one by one from the
cache -> batch -> per-window normalization (normalize.py) on the batch -> prefetch. Nothing
is materialized: RAM holds a few batches whatever the cache size. Validation: the held-out
songs' windows in order, un-augmented.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

import audio
import augment
import normalize
import targets
from augment import PAPER_MIX

READERS = 2          # batches read in parallel (h5py serializes reads; numpy work overlaps)


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


def model_io(mix_mag, vocal_mag, cfg: PipelineConfig):
    """(model input, training label) for a batch of raw magnitudes."""
    stats = normalize.fit(mix_mag, cfg.norm, cfg.scaler)
    return normalize.transform(mix_mag, stats), targets.label(mix_mag, vocal_mag, stats, cfg.target)


def epoch_size(store, cfg: PipelineConfig) -> int:
    """Examples per epoch (before rounding up to whole batches)."""
    return len(augment.epoch_recipes(store, 0, cfg.seed, cfg.mix, cfg.augment, cfg.drop_silent_vocals,
                                     cfg.splice_across_songs, shuffle=False))


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
                                                cfg.drop_silent_vocals, cfg.splice_across_songs)
                # topped up with its own first recipes to fill the last batch: nothing is dropped
                self.cache = {epoch: np.resize(recipes, self.n_examples)}
            return self.cache[epoch]


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
    recipes_of = _EpochRecipes(store, cfg, steps * cfg.batch_size)

    def read_batch(global_batch):
        epoch, batch = divmod(int(global_batch), steps)
        return augment.make_batch(store, recipes_of(epoch)[batch * cfg.batch_size:(batch + 1) * cfg.batch_size])

    shape = (cfg.batch_size, *audio.WINDOW_SHAPE)

    def load(global_batch):
        mix, vocal = tf.numpy_function(read_batch, [global_batch], (tf.float32, tf.float32))
        return model_io(tf.ensure_shape(mix, shape), tf.ensure_shape(vocal, shape), cfg)

    ds = tf.data.Dataset.range(initial_epoch * steps, epochs * steps)
    ds = ds.map(load, num_parallel_calls=READERS, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(store, cfg: PipelineConfig):
    """All windows of a store in order, un-augmented, normalized: for validation."""
    import tensorflow as tf

    def read_song(song):         # one contiguous read per song
        song = int(song)
        return store.read_song("mix_mag", song), store.read_song("vocal_mag", song)

    def load(song):
        mix, vocal = tf.numpy_function(read_song, [song], (tf.float32, tf.float32))
        shape = (None, *audio.WINDOW_SHAPE)
        return tf.ensure_shape(mix, shape), tf.ensure_shape(vocal, shape)

    ds = tf.data.Dataset.range(store.n_songs).map(load).unbatch().batch(cfg.batch_size)
    ds = ds.map(lambda m, v: model_io(m, v, cfg), num_parallel_calls=tf.data.AUTOTUNE)
    batches = math.ceil(len(store) / cfg.batch_size)
    # A known length lets Keras stop cleanly instead of warning that the input ran out.
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)
