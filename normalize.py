"""Per-window scalers: the "Normalization" (axis) x "Scaler" columns of Table I.

Statistics come from the *mixture* window only; the same affine transform is applied to the
vocal target, and predictions are mapped back with the mixture's statistics. All functions
take batches of windows shaped (..., N_BINS, WINDOW_FRAMES, 1) as numpy arrays or tensors and
are keras.ops, so they run vectorized inside a tf.data map (TensorFlow backend) and on NumPy
batches under JAX or PyTorch. Keras is imported when a function first runs, so command lines can
list AXES / SCALERS without its start-up.

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


def _quantiles(x, qs: tuple[float, ...], axis: int) -> list:
    """Linear-interpolated quantiles along `axis` (numpy's default method, as sklearn uses), all
    from one sort: the robust scaler's three quantiles cost one sort, not three (its sorts were a
    third of a training batch's input pipeline, and they run in the separation graph too).

    The axis length is static (bins or frames of a window), so the interpolation weights are plain numbers.
    """
    from keras import ops
    x = ops.sort(x, axis=axis)
    n = x.shape[axis]
    out = []
    for q in qs:
        pos = q * (n - 1)
        lo = int(pos // 1)
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        x_lo = ops.take(x, [lo], axis=axis)
        out.append(x_lo if frac == 0 else x_lo + frac * (ops.take(x, [hi], axis=axis) - x_lo))
    return out


def fit(mix_mag, axis: str, scaler: str) -> tuple:
    """Per-window statistics of the mixture: (offset, scale), broadcastable to the windows.

    Args:
        mix_mag: mixture magnitudes (..., N_BINS, WINDOW_FRAMES, 1).
        axis: "frequency" or "time".
        scaler: "minmax", "max" or "robust".
    """
    _check(axis, scaler)
    from keras import ops
    x = ops.convert_to_tensor(mix_mag, dtype="float32")
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
    from keras import ops
    offset, scale = stats
    return (ops.convert_to_tensor(x, dtype="float32") - offset) / scale


def inverse(y, stats: tuple):
    """Undo transform with the mixture's statistics."""
    from keras import ops
    offset, scale = stats
    return ops.convert_to_tensor(y, dtype="float32") * scale + offset


def normalize_pair(mix_mag, vocal_mag, axis: str, scaler: str) -> tuple:
    """Scale a (mixture, vocal) batch with the mixture's statistics: the training transform."""
    stats = fit(mix_mag, axis, scaler)
    return transform(mix_mag, stats), transform(vocal_mag, stats)
