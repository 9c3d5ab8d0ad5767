"""What the network is trained to output, in one place: output layer, training label, inverse.

    direct  linear output = the normalized vocal magnitude (the paper); the estimate is the
            output mapped back with the mixture window's statistics
    mask    sigmoid output = a soft mask vocal / max(vocal, mixture) (report 002) that multiplies
            the un-normalized mixture magnitude; the loss is on the mask
    masked  Jansson et al.: a sigmoid mask times the normalized mixture, so the loss is on the
            normalized vocal magnitude as for "direct" (loud bins count more than silent ones, as
            they do for SDR) while the estimate stays between 0 and the mixture
    masked2 "masked" for two sources: one sigmoid mask each for vocals and accompaniment (two
            output channels, bounded heads as in Spleeter), each estimated on its own so that soft
            masks and Wiener filtering (separation.py) have two independent estimates to share
            the mixture between
    direct2 "direct" for two sources: the normalized vocal and accompaniment magnitudes, two
            linear output channels (unbounded heads)

Each mode has its layer (`output_layer`), its label (`label`), its way back to a vocal magnitude
(`vocal_estimate`) and its do-nothing estimate for the baseline loss (`trivial_output`), side by
side so they cannot drift apart.
"""
from __future__ import annotations

import normalize

TARGETS = ("direct", "mask", "masked", "masked2", "direct2")
SOURCES = {"masked2": ("vocals", "accompaniment"), "direct2": ("vocals", "accompaniment")}   # default: vocals only


def sources(target: str) -> tuple[str, ...]:
    """The sources a target's output channels estimate, in channel order."""
    return SOURCES.get(target, ("vocals",))


def check(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")


def output_layer(features, inputs, target: str):
    """The model's output from its last features (one channel) and its normalized input.

    float32 whatever the precision policy: keeps the loss numerically safe under mixed precision.
    """
    from keras import layers
    check(target)
    if target in ("masked", "masked2"):
        mask = layers.Activation("sigmoid", dtype="float32", name="mask")(features)
        return layers.Multiply(dtype="float32", name="output")([mask, inputs])     # broadcast over channels
    return layers.Activation("sigmoid" if target == "mask" else "linear", dtype="float32", name="output")(features)


def ideal_mask(mix_mag, vocal_mag):
    """Report 002's soft-mask target vocal / max(vocal, mixture), 0 where both are 0."""
    ops = normalize.namespace(mix_mag, vocal_mag)
    if ops.__name__ == "numpy":
        peak = ops.maximum(vocal_mag, mix_mag)
        return ops.divide(vocal_mag, peak, out=ops.zeros_like(peak), where=peak > 0)
    return ops.divide_no_nan(vocal_mag, ops.maximum(vocal_mag, mix_mag))


def label(mix_mag, vocal_mag, stats, target: str, accomp_mag=None):
    """The training label for raw magnitude batches, given the mixture's scaler statistics
    (accomp_mag: the accompaniment magnitudes, needed by two-source targets)."""
    if target == "mask":
        return ideal_mask(mix_mag, vocal_mag)
    if len(sources(target)) == 2:
        if accomp_mag is None:
            raise ValueError(f"target {target!r} needs the accompaniment magnitudes")
        return normalize.transform_channels([vocal_mag, accomp_mag], stats)
    return normalize.transform(vocal_mag, stats)


def vocal_estimate(output, mix_mag, stats, target: str):
    """The model's output back to (non-negative) magnitudes: the vocals, then for two-source
    targets the accompaniment, as channels."""
    from keras import ops
    vocal = output * mix_mag if target == "mask" else normalize.inverse(output, stats)
    # A magnitude cannot be negative; direct regression can undershoot zero.
    return ops.maximum(vocal, 0.0)


def trivial_output(model_input, target: str):
    """The output that leaves the mixture as it is: an all-ones mask, or the normalized mixture
    (for two sources: all of it as vocals, nothing as accompaniment)."""
    import numpy as np
    if target == "mask":
        return np.ones_like(model_input)
    if len(sources(target)) == 2:
        return np.concatenate([model_input, np.zeros_like(model_input)], axis=-1)
    return np.asarray(model_input)
