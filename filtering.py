"""Multichannel Wiener filtering: norbert's `wiener` (soft mask + EM), vectorized over frames.

Layout: (bins, frames, channels, sources), the STFT layout of audio.py (norbert's is frames first;
the tests transpose to compare).

norbert (the sigsep package Open-Unmix uses) runs its EM iterations one STFT frame at a time in
Python: 7 s of a 3-minute stereo song's 10 s separation on 2 cores, even restricted to the
model's 0-5.5 kHz band. This is the same algorithm, term for term (soft-mask start, the
max_abs / 10 scaling, eps regularization, per-bin spatial covariances, analytic 2x2 inverse),
computed on whole arrays: stereo in real arithmetic on (F, T) planes (about 3x faster than the same
on complex arrays, 6x faster than norbert: bench/wiener.py), other channel counts with einsum on
blocks of frames; tests/test_remix.py checks both against norbert itself.
"""
from __future__ import annotations

import functools
import os

import numpy as np

BLOCK_FRAMES = 256          # frames per vectorized block: bounded temporaries, (256, bins, 2, 2) complex
MIN_THREADED_POINTS = 1 << 19   # bins x frames below which the stereo filter stays on one thread (a 7-second
                                # song: 154k; threads only paid on long chunks, 265 -> 213 ms a 3-minute song)
MAX_THREADS = 8


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


def _planes(z: np.ndarray) -> list[np.ndarray]:
    """(re, im) of channel 0, then of channel 1, of a (F, T, 2) complex array, each contiguous."""
    return [np.ascontiguousarray(part(z[..., c])) for c in range(2) for part in (np.real, np.imag)]


def _em_stereo(planes: list[list[np.ndarray]], mix: list[np.ndarray], iterations: int, eps: float,
               keep: list[int] | None = None) -> None:
    """expectation_maximization for 2 channels, in place on real (F, T) planes: planes[j] holds
    source j's _planes, mix the mixture's; the last iteration updates only the sources `keep`
    (default all: a source nobody reads needs no final estimate).

    numpy's einsum is slow on 2x2 inner dimensions, and complex products with broadcast per-bin
    factors and strided (F, T, C, J) views run far below its real SIMD loops, so every 2x2 product
    is written out on the real and imaginary planes. Two identities halve norbert's work: the
    diagonals of the Hermitian covariances and of C_xx^-1 are real, and every source's estimate
    v_j R_j C_xx^-1 x shares z = C_xx^-1 x, computed once."""
    a0, b0, a1, b1 = mix
    real = a0.dtype
    reg = real.type(np.sqrt(eps))
    for iteration in range(iterations):
        c00 = np.full(a0.shape, reg, real)               # C_xx = sum_j v_j R_j + reg I; c00, c11 real
        c11, c01_re, c01_im = c00.copy(), np.zeros_like(c00), np.zeros_like(c00)
        stats = []
        for re0, im0, re1, im1 in planes:
            p0, p1 = re0 * re0 + im0 * im0, re1 * re1 + im1 * im1
            v = 0.5 * (p0 + p1)                                               # power, mean over channels
            weight = eps + v.sum(axis=1, keepdims=True)                      # (F, 1)
            # per-bin spatial covariance: r00, r11 real, r01 = s + it, r10 = conj(r01)
            r00, r11 = p0.sum(axis=1, keepdims=True) / weight, p1.sum(axis=1, keepdims=True) / weight
            s = np.sum(re0 * re1 + im0 * im1, axis=1, keepdims=True) / weight
            t = np.sum(im0 * re1 - re0 * im1, axis=1, keepdims=True) / weight
            c00 += v * r00
            c11 += v * r11
            c01_re += v * s
            c01_im += v * t
            stats.append((v, r00, r11, s, t))
        inv_det = 1.0 / (c00 * c11 - c01_re * c01_re - c01_im * c01_im)
        i00, i11 = c11 * inv_det, c00 * inv_det                              # C_xx^-1; i01 = p + iq, i10 = conj
        p, q = -c01_re * inv_det, -c01_im * inv_det
        z0_re, z0_im = i00 * a0 + p * a1 - q * b1, i00 * b0 + p * b1 + q * a1
        z1_re, z1_im = p * a0 + q * b0 + i11 * a1, p * b0 - q * a0 + i11 * b1
        last = iteration == iterations - 1
        for j, ((v, r00, r11, s, t), plane) in enumerate(zip(stats, planes)):
            if last and keep is not None and j not in keep:
                continue
            plane[0] = v * (r00 * z0_re + s * z1_re - t * z1_im)
            plane[1] = v * (r00 * z0_im + s * z1_im + t * z1_re)
            plane[2] = v * (s * z0_re + t * z0_im + r11 * z1_re)
            plane[3] = v * (s * z0_im - t * z0_re + r11 * z1_im)


def _from_planes(planes: list[list[np.ndarray]], dtype, scale: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """(F, T, 2, J) complex estimates from each source's _planes, times scale (into `out` if given)."""
    y = np.empty(planes[0][0].shape + (2, len(planes)), dtype) if out is None else out
    for j, plane in enumerate(planes):
        for c in range(2):
            np.multiply(plane[2 * c], scale, out=y.real[..., c, j])
            np.multiply(plane[2 * c + 1], scale, out=y.imag[..., c, j])
    return y


def bin_blocks(bins: int, frames: int, threads: int | None = None) -> list[slice]:
    """Contiguous frequency-bin ranges, one per thread: every bin's EM is independent of the others'
    (its spatial covariance sums over frames only), and NumPy's loops release the GIL, so the
    stereo filter runs its blocks on threads. One block for small inputs, where threads cost more
    than they save."""
    threads = threads or os.cpu_count() or 1
    if threads == 1 or bins * frames < MIN_THREADED_POINTS:
        return [slice(0, bins)]
    edges = np.linspace(0, bins, min(threads, MAX_THREADS) + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _wiener_stereo(v: np.ndarray, x: np.ndarray, iterations: int, eps: float, sources: list[int]) -> np.ndarray:
    """wiener() for 2 channels on real planes from the start: norbert's soft-mask start and max_abs
    scaling, applied plane by plane, then _em_stereo; frequency-bin blocks on threads (bin_blocks)."""
    blocks = bin_blocks(*x.shape[:2])
    run = (lambda f, items: list(map(f, items))) if len(blocks) == 1 else \
        (lambda f, items: list(_pool(len(blocks)).map(f, items)))
    mixes = run(lambda block: _planes(x[block]), blocks)
    peak = max(float((re * re + im * im).max()) for mix in mixes for re, im in (mix[:2], mix[2:]))
    max_abs = max(1.0, float(np.sqrt(peak)) / 10.0)        # norbert's scaling for numerical stability
    out = np.empty(x.shape + (len(sources),), x.dtype)

    def filter_block(block_mix) -> None:
        block, mix = block_mix
        for plane in mix:
            plane /= max_abs
        # the soft-mask start, channel by channel: a sum over the short sources axis of (F, T, C, J)
        # as one reduction runs numpy's inner loop J times per bin (a third of the filter's time)
        vb = v[block].astype(mix[0].dtype, copy=False)
        total = eps + sum(vb[..., j] for j in range(vb.shape[-1]))              # (F, T, C|1)
        channel = [min(c, vb.shape[2] - 1) for c in range(2)]
        planes = [[part * (vb[:, :, channel[c], j] / total[:, :, channel[c]]) for c in range(2)
                   for part in mix[2 * c:2 * c + 2]] for j in range(vb.shape[-1])]
        _em_stereo(planes, mix, iterations, eps, keep=sources)
        _from_planes([planes[j] for j in sources], x.dtype, max_abs, out[block])

    run(filter_block, list(zip(blocks, mixes)))
    return out


@functools.cache
def _pool(threads: int):
    """A thread pool kept for the process (separation calls the filter once per chunk)."""
    from concurrent.futures import ThreadPoolExecutor
    return ThreadPoolExecutor(threads, thread_name_prefix="wiener")


def expectation_maximization(y: np.ndarray, x: np.ndarray, iterations: int, eps: float) -> np.ndarray:
    """norbert.expectation_maximization's source estimates. y (F, T, C, J) complex, x (F, T, C)."""
    bins, frames, channels = x.shape
    if channels == 2:                   # the planes are copies: y is not modified
        planes = [_planes(y[..., j]) for j in range(y.shape[-1])]
        _em_stereo(planes, _planes(x), iterations, eps)
        return _from_planes(planes, x.dtype)
    y = y.copy()
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


def wiener(v: np.ndarray, x: np.ndarray, iterations: int = 1, eps: float | None = None,
           sources: list[int] | None = None) -> np.ndarray:
    """norbert.wiener(v, x, iterations, use_softmask=True, eps).

    Args:
        v: (bins, frames, channels or 1, sources) non-negative source spectrograms.
        x: (bins, frames, channels) complex mixture STFT.
        iterations: EM iterations (0 = the soft mask only).
        eps: regularization; default the machine epsilon of x's real type, as norbert.
        sources: the sources to return (default all); the stereo filter skips the others' last update.
    Returns:
        (bins, frames, channels, len(sources)) complex source estimates.
    """
    if eps is None:
        eps = float(np.finfo(np.real(x[:1]).dtype).eps)
    sources = list(range(v.shape[-1])) if sources is None else list(sources)
    if iterations and x.shape[-1] == 2:
        return _wiener_stereo(v, x, iterations, eps, sources)
    y = softmask(v, x, eps)
    if not iterations:
        return y[..., sources]
    max_abs = max(1.0, float(np.abs(x).max()) / 10.0)     # norbert's scaling for numerical stability
    return expectation_maximization(y / max_abs, x / max_abs, iterations, eps)[..., sources] * max_abs
