"""What the network is trained to output, in one place: output layer, training label, inverse.

    direct  linear output = the normalized vocal magnitude (the paper); the estimate is the
            output mapped back with the mixture window's statistics
    mask    sigmoid output = a soft mask vocal / max(vocal, mixture) (report 002) that multiplies
            the un-normalized mixture magnitude; the loss is on the mask
    masked  Jansson et al.: a sigmoid mask times the normalized mixture, so the loss is on the
            normalized vocal magnitude as for "direct" (loud bins count more than silent ones, as
            they do for SDR) while the estimate stays between 0 and the mixture

Each mode has its layer (`output_layer`), its label (`label`), its way back to a vocal magnitude
(`vocal_estimate`) and its do-nothing estimate for the baseline loss (`trivial_output`), side by
side so they cannot drift apart.
"""
from __future__ import annotations

import normalize

TARGETS = ("direct", "mask", "masked")


def check(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")


def output_layer(features, inputs, target: str):
    """The model's output from its last features (one channel) and its normalized input.

    float32 whatever the precision policy: keeps the loss numerically safe under mixed precision.
    """
    from keras import layers
    check(target)
    if target == "masked":
        mask = layers.Activation("sigmoid", dtype="float32", name="mask")(features)
        return layers.Multiply(dtype="float32", name="output")([mask, inputs])
    return layers.Activation("sigmoid" if target == "mask" else "linear", dtype="float32", name="output")(features)


def ideal_mask(mix_mag, vocal_mag):
    """Report 002's soft-mask target vocal / max(vocal, mixture), 0 where both are 0."""
    import tensorflow as tf
    denom = tf.maximum(vocal_mag, mix_mag)
    return tf.math.divide_no_nan(vocal_mag, denom)


def label(mix_mag, vocal_mag, stats, target: str):
    """The training label for raw magnitude batches, given the mixture's scaler statistics."""
    return ideal_mask(mix_mag, vocal_mag) if target == "mask" else normalize.transform(vocal_mag, stats)


def vocal_estimate(output, mix_mag, stats, target: str):
    """The model's output back to a (non-negative) vocal magnitude."""
    import tensorflow as tf
    vocal = output * mix_mag if target == "mask" else normalize.inverse(output, stats)
    # A magnitude cannot be negative; direct regression can undershoot zero.
    return tf.maximum(vocal, 0.0)


def trivial_output(model_input, target: str):
    """The output that leaves the mixture as it is: an all-ones mask, or the normalized mixture."""
    import numpy as np
    return np.ones_like(model_input) if target == "mask" else np.asarray(model_input)
