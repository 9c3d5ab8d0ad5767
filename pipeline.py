"""tf.data input pipelines streamed from the HDF5 caches.

Training: per-epoch augmentation recipes (augment.py) -> windows read one by one from the
cache -> batch -> per-window normalization (normalize.py) on the batch -> prefetch. Nothing
is materialized: RAM holds a few batches whatever the cache size. Validation: the held-out
songs' windows in order, un-augmented.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import audio
import augment
import normalize

WINDOW_SHAPE = (audio.N_BINS, audio.WINDOW_FRAMES, 1)
READERS = 2          # parallel batch readers (bench/train.py: 2 beat 1 by ~1.5x on 2 cores)


@dataclass
class PipelineConfig:
    """What a pipeline needs to know; train.py fills it from its arguments."""
    norm: str = "frequency"
    scaler: str = "minmax"
    target: str = "direct"
    batch_size: int = 64
    seed: int = 0
    augment: bool = True
    mix: object = (40.0, 40.0, 20.0)
    splice_across_songs: bool = False
    drop_silent_vocals: bool = False


def ideal_mask(mix_mag, vocal_mag):
    """Report 002's soft-mask target vocal / max(vocal, mixture), 0 where both are 0."""
    import tensorflow as tf
    denom = tf.maximum(vocal_mag, mix_mag)
    return tf.math.divide_no_nan(vocal_mag, denom)


def model_io(mix_mag, vocal_mag, cfg: PipelineConfig):
    """(model input, training target) for a batch of raw magnitudes."""
    stats = normalize.fit(mix_mag, cfg.norm, cfg.scaler)
    x = normalize.transform(mix_mag, stats)
    y = ideal_mask(mix_mag, vocal_mag) if cfg.target == "mask" else normalize.transform(vocal_mag, stats)
    return x, y


def epoch_size(store, cfg: PipelineConfig) -> int:
    """Examples per epoch (before rounding up to whole batches)."""
    return len(augment.epoch_recipes(store, 0, cfg.seed, cfg.mix, cfg.augment, cfg.drop_silent_vocals,
                                     cfg.splice_across_songs, shuffle=False))


def steps_per_epoch(store, cfg: PipelineConfig) -> int:
    return max(1, math.ceil(epoch_size(store, cfg) / cfg.batch_size))


def train_dataset(store, cfg: PipelineConfig, epochs: int, initial_epoch: int = 0,
                  examples_per_epoch: int | None = None):
    """Training dataset of epochs initial_epoch..epochs-1, each exactly steps_per_epoch batches.

    Each epoch's recipe list is topped up to whole batches with its own first recipes, so
    epoch boundaries fall on batch boundaries and --resume continues the same sequence. The
    generator yields whole batches (per-element from_generator overhead would cap the
    pipeline far below 1,000 examples/s) and is finite (an endless one hangs interpreter exit).

    Args:
        store: cache.WindowStore of training windows.
        cfg: pipeline settings.
        epochs: last epoch (exclusive), as Keras counts them.
        initial_epoch: first epoch to produce (for --resume).
        examples_per_epoch: override (tests and benchmarks); default = a whole epoch.
    """
    import tensorflow as tf

    def generate(reader: int):
        for epoch in range(initial_epoch, epochs):
            recipes = augment.epoch_recipes(store, epoch, cfg.seed, cfg.mix, cfg.augment,
                                            cfg.drop_silent_vocals, cfg.splice_across_songs)
            n = math.ceil((examples_per_epoch or len(recipes)) / cfg.batch_size) * cfg.batch_size
            recipes = np.resize(recipes, n)          # repeats from the start to fill the last batch
            for start in range(reader * cfg.batch_size, n, READERS * cfg.batch_size):
                yield augment.make_batch(store, recipes[start:start + cfg.batch_size])

    spec = tf.TensorSpec((cfg.batch_size, *WINDOW_SHAPE), tf.float32)
    # READERS generators take alternate batches; a deterministic interleave restores the order.
    ds = tf.data.Dataset.range(READERS).interleave(
        lambda reader: tf.data.Dataset.from_generator(generate, args=(reader,), output_signature=(spec, spec)),
        cycle_length=READERS, block_length=1, num_parallel_calls=READERS, deterministic=True)
    ds = ds.map(lambda m, v: model_io(m, v, cfg), num_parallel_calls=tf.data.AUTOTUNE)
    batches = (epochs - initial_epoch) * math.ceil(
        (examples_per_epoch or epoch_size(store, cfg)) / cfg.batch_size)
    # A known length lets Keras stop cleanly instead of warning that the input ran out.
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


def eval_dataset(store, cfg: PipelineConfig):
    """All windows of a store in order, un-augmented, normalized: for validation."""
    import tensorflow as tf

    def generate():
        for song in range(store.n_songs):        # one contiguous read per song
            yield store.read_song("mix_mag", song), store.read_song("vocal_mag", song)

    spec = tf.TensorSpec((None, *WINDOW_SHAPE), tf.float32)
    ds = tf.data.Dataset.from_generator(generate, output_signature=(spec, spec)).unbatch()
    ds = ds.batch(cfg.batch_size).map(lambda m, v: model_io(m, v, cfg), num_parallel_calls=tf.data.AUTOTUNE)
    batches = math.ceil(len(store) / cfg.batch_size)
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)
