"""Per-window scalers: the "Normalization" (axis) x "Scaler" columns of Table I.

Statistics come from the *mixture* window only; the same affine transform is applied to the
vocal target, and predictions are mapped back with the mixture's statistics. All functions
take batches of windows shaped (..., N_BINS, WINDOW_FRAMES, 1): tensors go through keras.ops (inside
the model's and the loss's graphs), NumPy arrays through NumPy itself (the training pipelines'
reader threads, any backend), by the same code: the two namespaces share these functions' names
and signatures. NumPy's vectorized sort makes the robust scaler 5x cheaper there than TensorFlow's
(tf.sort is a top-k), which is what kept the input pipelines under 1,000 windows/s on 2 cores.
Keras is imported only for tensors, so command lines can list AXES / SCALERS without its start-up.

Axes:
    frequency: each bin (row) is scaled by statistics over the window's frames.
    time:      each frame (column) is scaled by statistics over its bins.
Scalers:
    minmax: (x - min) / (max - min)       paper text, sklearn MinMaxScaler
    max:    x / max                        the released code
    robust: (x - median) / IQR(25..75)     the paper's "Quantile", sklearn RobustScaler
A zero range (or zero max) gives scale 1, as scikit-learn does, so nothing becomes NaN or inf.
"""
from __future__ import annotations

import numpy as np

AXES = ("frequency", "time")
SCALERS = ("minmax", "max", "robust")
SCALER_LABELS = {"minmax": "Min/Max", "max": "Max", "robust": "Quantile"}   # Table I's names
TABLE_SCALERS = ("minmax", "robust")            # the scalers of the paper's Table I grid

# Window layout (..., bins, frames, channel): frequency scaling reduces over frames.
_REDUCE_AXIS = {"frequency": -2, "time": -3}


def _check(axis: str, scaler: str) -> None:
    if axis not in AXES:
        raise ValueError(f"unknown normalization axis {axis!r}; choose one of {AXES}")
    if scaler not in SCALERS:
        raise ValueError(f"unknown scaler {scaler!r}; choose one of {SCALERS}")


def namespace(*arrays):
    """NumPy when every array is one (results stay NumPy arrays), else keras.ops."""
    if all(isinstance(a, np.ndarray) for a in arrays):
        return np
    from keras import ops
    return ops


def _float32(xp, x):
    return x.astype("float32", copy=False) if xp.__name__ == "numpy" else xp.convert_to_tensor(x, dtype="float32")


def _quantiles(x, qs: tuple[float, ...], axis: int) -> list:
    """Linear-interpolated quantiles along `axis` (numpy's default method, as sklearn uses), all
    from one sort: the robust scaler's three quantiles cost one sort, not three (its sorts were a
    third of a training batch's input pipeline, and they run in the separation graph too).

    The axis length is static (bins or frames of a window), so the interpolation weights are plain numbers.
    """
    ops = namespace(x)
    if ops.__name__ == "numpy":
        # sorted along a contiguous last axis (np.sort keeps a strided axis strided: 2x slower), read
        # there, the quantiles moved back to `axis`; always a copy: the caller's windows stay as they are
        ordered = np.moveaxis(x, axis, -1).copy(order="C")
        ordered.sort(axis=-1)
        take, sorted_axis = (lambda i: np.moveaxis(ordered[..., i:i + 1], -1, axis)), -1
    else:
        ordered = ops.sort(x, axis=axis)
        take, sorted_axis = (lambda i: ops.take(ordered, [i], axis=axis)), axis
    n = ordered.shape[sorted_axis]
    out = []
    for q in qs:
        pos = q * (n - 1)
        lo = int(pos // 1)
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        x_lo = take(lo)
        out.append(x_lo if frac == 0 else x_lo + frac * (take(hi) - x_lo))
    return out


def fit(mix_mag, axis: str, scaler: str) -> tuple:
    """Per-window statistics of the mixture: (offset, scale), broadcastable to the windows.

    Args:
        mix_mag: mixture magnitudes (..., N_BINS, WINDOW_FRAMES, 1).
        axis: "frequency" or "time".
        scaler: "minmax", "max" or "robust".
    """
    _check(axis, scaler)
    ops = namespace(mix_mag)
    x = _float32(ops, mix_mag)
    reduce_axis = _REDUCE_AXIS[axis]
    if scaler == "minmax":
        offset = ops.min(x, axis=reduce_axis, keepdims=True)
        scale = ops.max(x, axis=reduce_axis, keepdims=True) - offset
    elif scaler == "max":
        scale = ops.max(x, axis=reduce_axis, keepdims=True)
        offset = ops.zeros_like(scale)
    else:
        low, offset, high = _quantiles(x, (0.25, 0.5, 0.75), reduce_axis)
        scale = high - low
    scale = ops.where(scale > 0, scale, ops.ones_like(scale))
    return offset, scale


def transform(x, stats: tuple):
    """Apply mixture statistics to x (the mixture itself or the vocal target)."""
    offset, scale = stats
    ops = namespace(x, offset, scale)
    if ops.__name__ == "numpy":                 # one new array, not two
        out = np.subtract(x, offset, dtype=np.float32)
        return np.divide(out, scale, out=out)
    return (_float32(ops, x) - offset) / scale


def transform_channels(sources: list, stats: tuple):
    """transform() of each (..., 1) array, as the channels of one (..., len(sources)) array: a label.

    NumPy interleaves the sources first and scales the result as one contiguous array, each statistic
    repeated per channel (1.7x faster than scaling into strided channel views); the same numbers.
    """
    offset, scale = stats
    ops = namespace(*sources, offset, scale)
    if ops.__name__ != "numpy":
        return ops.concatenate([transform(x, stats) for x in sources], axis=-1)
    channels = len(sources)
    label = np.concatenate([x.astype(np.float32, copy=False) for x in sources], axis=-1)
    flat = label.reshape(*label.shape[:-2], -1)                  # (..., bins, frames * channels)

    def per_channel(stat):
        if stat.shape[-2] == 1:                                  # one value per bin: every frame, every channel
            return stat[..., 0]
        return np.repeat(stat, channels, axis=-1).reshape(*stat.shape[:-2], -1)
    np.subtract(flat, per_channel(offset), out=flat)
    np.divide(flat, per_channel(scale), out=flat)
    return label


def inverse(y, stats: tuple):
    """Undo transform with the mixture's statistics."""
    offset, scale = stats
    return _float32(namespace(y, offset, scale), y) * scale + offset


def normalize_pair(mix_mag, vocal_mag, axis: str, scaler: str) -> tuple:
    """Scale a (mixture, vocal) batch with the mixture's statistics: the training transform."""
    stats = fit(mix_mag, axis, scaler)
    return transform(mix_mag, stats), transform(vocal_mag, stats)
