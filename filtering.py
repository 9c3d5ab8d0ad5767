"""Multichannel Wiener filtering: norbert's `wiener` (soft mask + EM), vectorized over frames.

Layout: (bins, frames, channels, sources), the STFT layout of audio.py (norbert's is frames first;
the tests transpose to compare).

norbert (the sigsep package Open-Unmix uses) runs its EM iterations one STFT frame at a time in
Python: 7 s of a 3-minute stereo song's 10 s separation on 2 cores, even restricted to the
model's 0-5.5 kHz band. This is the same algorithm, term for term (soft-mask start, the
max_abs / 10 scaling, eps regularization, per-bin spatial covariances, analytic 2x2 inverse),
computed on blocks of frames with einsum; tests/test_remix.py checks it against norbert itself.
"""
from __future__ import annotations

import numpy as np

BLOCK_FRAMES = 256          # frames per vectorized block: bounded temporaries, (256, bins, 2, 2) complex


def softmask(v: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """norbert.softmask: x * v_j / (eps + sum_j v_j). v (F, T, C|1, J), x (F, T, C) -> (F, T, C, J)."""
    total = np.sum(v, axis=-1, keepdims=True)
    return (v / (eps + total)).astype(np.real(x[:1]).dtype, copy=False) * x[..., None]   # a real ratio: 3x faster


def _invert(m: np.ndarray, eps: float) -> np.ndarray:
    channels = m.shape[-1]
    if channels == 1:
        return 1.0 / (m + eps)
    if channels == 2:
        det = m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]
        inv_det = 1.0 / det
        inv = np.empty_like(m)
        inv[..., 0, 0] = inv_det * m[..., 1, 1]
        inv[..., 1, 0] = -inv_det * m[..., 1, 0]
        inv[..., 0, 1] = -inv_det * m[..., 0, 1]
        inv[..., 1, 1] = inv_det * m[..., 0, 0]
        return inv
    return np.linalg.pinv(m, eps)


def _em_stereo(y: np.ndarray, x: np.ndarray, iterations: int, eps: float) -> np.ndarray:
    """expectation_maximization for 2 channels with every 2x2 product written out: numpy's einsum
    is slow on 2x2 inner dimensions (the EM took as long as norbert's frame loop)."""
    reg = np.float32(np.sqrt(eps))
    x0, x1 = x[..., 0], x[..., 1]
    for _ in range(iterations):
        v = np.mean(y.real ** 2 + y.imag ** 2, axis=2)                       # (F, T, J)
        weight = eps + v.sum(axis=1)                                         # (F, J)
        r = {(c, c): (np.sum(y.real[:, :, c] ** 2 + y.imag[:, :, c] ** 2, axis=1) / weight).astype(x.dtype)[:, None]
             for c in range(2)}                                              # each (F, 1, J)
        r[0, 1] = (np.sum(y[:, :, 0] * np.conj(y[:, :, 1]), axis=1) / weight).astype(x.dtype)[:, None]
        r[1, 0] = np.conj(r[0, 1])                                           # Hermitian
        mix = {cd: sum(v[..., j] * rj[..., j] for j in range(v.shape[-1])) for cd, rj in r.items()}
        c00, c01, c10, c11 = mix[0, 0] + reg, mix[0, 1], mix[1, 0], mix[1, 1] + reg
        inv_det = 1.0 / (c00 * c11 - c01 * c10)
        i00, i01, i10, i11 = c11 * inv_det, -c01 * inv_det, -c10 * inv_det, c00 * inv_det
        for j in range(y.shape[-1]):
            vj = v[..., j]
            g = {(c, d): vj * (r[c, 0][..., j] * (i00 if d == 0 else i01) + r[c, 1][..., j] * (i10 if d == 0 else i11))
                 for c in range(2) for d in range(2)}
            y[..., 0, j] = g[0, 0] * x0 + g[0, 1] * x1
            y[..., 1, j] = g[1, 0] * x0 + g[1, 1] * x1
    return y


def expectation_maximization(y: np.ndarray, x: np.ndarray, iterations: int, eps: float) -> np.ndarray:
    """norbert.expectation_maximization's source estimates. y (F, T, C, J) complex, x (F, T, C)."""
    bins, frames, channels = x.shape
    y = y.copy()
    if channels == 2:
        return _em_stereo(y, x, iterations, eps)
    regularization = np.sqrt(eps) * np.eye(channels, dtype=np.complex64)
    for _ in range(iterations):
        v = np.mean(np.abs(y) ** 2, axis=2)                                  # (F, T, J) power
        # spatial covariance of each source, per bin: sum_t y y^H / (eps + sum_t v)
        r = np.einsum("ftcj,ftdj->fcdj", y, np.conj(y)) / (eps + v.sum(axis=1))[:, None, None, :]
        r = r.astype(x.dtype, copy=False)
        for start in range(0, frames, BLOCK_FRAMES):
            block = slice(start, start + BLOCK_FRAMES)
            vb = v[:, block]
            cxx = np.einsum("ftj,fcdj->ftcd", vb.astype(r.dtype), r) + regularization
            inv_cxx = _invert(cxx, eps)
            for j in range(y.shape[-1]):
                gain = np.einsum("fce,fted->ftcd", r[..., j], inv_cxx) * vb[..., j, None, None]
                y[:, block, :, j] = np.einsum("ftcd,ftd->ftc", gain, x[:, block])
    return y


def wiener(v: np.ndarray, x: np.ndarray, iterations: int = 1, eps: float | None = None) -> np.ndarray:
    """norbert.wiener(v, x, iterations, use_softmask=True, eps).

    Args:
        v: (bins, frames, channels or 1, sources) non-negative source spectrograms.
        x: (bins, frames, channels) complex mixture STFT.
        iterations: EM iterations (0 = the soft mask only).
        eps: regularization; default the machine epsilon of x's real type, as norbert.
    Returns:
        (bins, frames, channels, sources) complex source estimates.
    """
    if eps is None:
        eps = float(np.finfo(np.real(x[:1]).dtype).eps)
    y = softmask(v, x, eps)
    if not iterations:
        return y
    max_abs = max(1.0, float(np.abs(x).max()) / 10.0)     # norbert's scaling for numerical stability
    return expectation_maximization(y / max_abs, x / max_abs, iterations, eps) * max_abs
