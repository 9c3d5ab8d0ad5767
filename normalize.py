"""Per-window scalers: the "Normalization" (axis) x "Scaler" columns of Table I.

Statistics come from the *mixture* window only; the same affine transform is applied to the
vocal target, and predictions are mapped back with the mixture's statistics. All functions
take batches of windows shaped (..., N_BINS, WINDOW_FRAMES, 1) as numpy arrays or tensors and
are plain TensorFlow ops, so they run vectorized inside a tf.data map. TensorFlow is imported
when a function first runs, so command lines can list AXES / SCALERS without its start-up.

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


def _quantile(x, q: float, axis: int):
    """Linear-interpolated quantile along `axis` (numpy's default method, as sklearn uses)."""
    import tensorflow as tf
    x = tf.sort(x, axis=axis)
    n = tf.shape(x)[axis]
    pos = q * tf.cast(n - 1, x.dtype)
    lo = tf.cast(tf.floor(pos), tf.int32)
    hi = tf.minimum(lo + 1, n - 1)
    frac = pos - tf.cast(lo, x.dtype)
    x_lo = tf.gather(x, [lo], axis=axis % len(x.shape))
    x_hi = tf.gather(x, [hi], axis=axis % len(x.shape))
    return x_lo + frac * (x_hi - x_lo)


def fit(mix_mag, axis: str, scaler: str) -> tuple:
    """Per-window statistics of the mixture: (offset, scale), broadcastable to the windows.

    Args:
        mix_mag: mixture magnitudes (..., N_BINS, WINDOW_FRAMES, 1).
        axis: "frequency" or "time".
        scaler: "minmax", "max" or "robust".
    """
    _check(axis, scaler)
    import tensorflow as tf
    x = tf.convert_to_tensor(mix_mag, dtype=tf.float32)
    reduce_axis = _REDUCE_AXIS[axis]
    if scaler == "minmax":
        offset = tf.reduce_min(x, axis=reduce_axis, keepdims=True)
        scale = tf.reduce_max(x, axis=reduce_axis, keepdims=True) - offset
    elif scaler == "max":
        scale = tf.reduce_max(x, axis=reduce_axis, keepdims=True)
        offset = tf.zeros_like(scale)
    else:
        offset = _quantile(x, 0.5, reduce_axis)
        scale = _quantile(x, 0.75, reduce_axis) - _quantile(x, 0.25, reduce_axis)
    scale = tf.where(scale > 0, scale, tf.ones_like(scale))
    return offset, scale


def transform(x, stats: tuple):
    """Apply mixture statistics to x (the mixture itself or the vocal target)."""
    import tensorflow as tf
    offset, scale = stats
    return (tf.convert_to_tensor(x, dtype=tf.float32) - offset) / scale


def inverse(y, stats: tuple):
    """Undo transform with the mixture's statistics."""
    import tensorflow as tf
    offset, scale = stats
    return tf.convert_to_tensor(y, dtype=tf.float32) * scale + offset


def normalize_pair(mix_mag, vocal_mag, axis: str, scaler: str) -> tuple:
    """Scale a (mixture, vocal) batch with the mixture's statistics: the training transform."""
    stats = fit(mix_mag, axis, scaler)
    return transform(mix_mag, stats), transform(vocal_mag, stats)
