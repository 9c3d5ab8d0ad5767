"""Training losses: the paper's magnitude losses, and an SDR loss on waveforms (the paper's future work).

    mae, mse  on the normalized magnitudes (the label of targets.py), as in the paper
    sdr       minus the SDR of each source's waveform, 10 log10((|s|^2 + eps) / (|s - s_hat|^2 + eps)):
              the estimate is mapped back to a magnitude with the mixture window's statistics, given
              the mixture's phase, and turned into a waveform by an in-graph inverse STFT (the same
              periodic Hann window, hop and Nyquist row as audio.istft); the reference is the true
              source's STFT through the same inverse, so both share the window edges. eps keeps
              vocal-free windows defined: there the loss asks for silence.
    sdrmask   (two-source targets) the sdr loss plus the SDR of the estimates separation.py makes from
              the two outputs: the mixture's STFT times the soft mask V / (V + A), and times A / (V + A).
              The outputs are trained where they are used (the soft-mask chain, the Wiener filter's
              start), the direct term keeps each output's scale, which separation.py's ratios rely on.

For "sdr" the label carries, after the target's channels, the raw spectra the waveforms need:
mixture (real, imaginary), then each source's (real, imaginary) (`spectra_channels`).
"""
from __future__ import annotations

import math

import audio
import normalize

LOSSES = ("mae", "mse", "sdr", "sdrmask")
SDR_EPS = 1e-3          # energy floor of the SDR terms (waveforms of ~0.1 amplitude sum to ~10^2)


def needs_spectra(loss: str) -> bool:
    return loss in ("sdr", "sdrmask")


def spectra_channels(n_sources: int) -> int:
    """Label channels the SDR loss appends: mixture and each source, real and imaginary."""
    return 2 + 2 * n_sources


def get(loss: str, norm: str, scaler: str, n_sources: int):
    """The Keras loss for train.py's --loss."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    if loss == "sdrmask" and n_sources != 2:
        raise ValueError("--loss sdrmask needs a two-source target (direct2 or masked2): "
                         "the soft mask is V / (V + A)")
    if not needs_spectra(loss):
        return loss
    return register()(norm=norm, scaler=scaler, n_sources=n_sources, masked=loss == "sdrmask")


def synthesis_window() -> "np.ndarray":
    """The inverse STFT's window: the periodic Hann window over the sum of its squares at the frames'
    overlaps (tf.signal.inverse_stft_window_fn's, a constant 1.5 for Hann at a quarter-frame hop), so
    an unmodified spectrum's overlap-add returns the waveform away from the excerpt's edges."""
    import numpy as np
    window = audio._hann(audio.N_FFT).astype(np.float64)
    overlaps = -(-audio.N_FFT // audio.HOP)
    squares = np.pad(window ** 2, (0, overlaps * audio.HOP - audio.N_FFT)).reshape(overlaps, audio.HOP)
    denominator = np.tile(squares.sum(axis=0), overlaps)[:audio.N_FFT]
    return (window / denominator).astype(np.float32)


def waveforms(real, imag):
    """(batch, bins, frames, sources) real and imaginary STFT windows -> (batch, sources, samples).

    The uncentred inverse STFT (inverse FFT with a zero Nyquist row, synthesis window, overlap-add of
    frames HOP apart: (frames - 1) * HOP + N_FFT samples), written in keras.ops so that the SDR losses
    train under every Keras backend (JAX on the GPU machine, which has no TensorFlow); numerically
    tf.signal.inverse_stft with its inverse_stft_window_fn (tests/test_remix.py).
    """
    from keras import ops
    real, imag = (ops.transpose(x, (0, 3, 2, 1)) for x in (real, imag))       # (B, S, T, N_BINS)
    nyquist = ops.zeros_like(real[..., :1])
    frames = ops.irfft((ops.concatenate([real, nyquist], axis=-1), ops.concatenate([imag, nyquist], axis=-1)),
                       fft_length=audio.N_FFT) * ops.convert_to_tensor(synthesis_window(), dtype=real.dtype)
    n_sources, n_frames = real.shape[1], real.shape[2]
    overlaps = audio.N_FFT // audio.HOP            # N_FFT is a multiple of HOP: frames tile in blocks
    blocks = ops.reshape(frames, (-1, n_sources, n_frames, overlaps, audio.HOP))
    # block k of frame t lands in output block t + k: each block column padded to its place, then summed
    summed = sum(ops.pad(blocks[:, :, :, k], ((0, 0), (0, 0), (k, overlaps - 1 - k), (0, 0))) for k in range(overlaps))
    return ops.reshape(summed, (-1, n_sources, (n_frames + overlaps - 1) * audio.HOP))


_SDR_CLASS = None


def register():
    """The WaveformSDR loss class, defined and registered with Keras on first use (so that listing
    LOSSES does not import Keras, and resume.keras files that name it load)."""
    global _SDR_CLASS
    if _SDR_CLASS is not None:
        return _SDR_CLASS
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="vocal_separator")
    class WaveformSDR(keras.losses.Loss):
        """Minus the mean SDR over the sources of each example (see the module docstring).

        Args:
            norm, scaler: the run's normalization (to map the output back to magnitudes).
            n_sources: output channels (1: vocals; 2: vocals and accompaniment).
        """

        def __init__(self, norm: str = "time", scaler: str = "robust", n_sources: int = 1, name: str = "sdr",
                     masked: bool = False, **kwargs):
            super().__init__(name=name, **kwargs)
            self.norm, self.scaler, self.n_sources, self.masked = norm, scaler, n_sources, masked

        def call(self, y_true, y_pred):
            s = self.n_sources
            mix_re, mix_im = y_true[..., s:s + 1], y_true[..., s + 1:s + 2]
            mix_mag = ops.sqrt(mix_re ** 2 + mix_im ** 2)
            stats = normalize.fit(mix_mag, self.norm, self.scaler)
            est_mag = ops.relu(normalize.inverse(y_pred, stats))
            safe = ops.maximum(mix_mag, 1e-12)
            ref = waveforms(y_true[..., s + 2::2], y_true[..., s + 3::2])
            sdr = _sdr(ref, waveforms(est_mag * mix_re / safe, est_mag * mix_im / safe))
            if self.masked:
                # separation.soft_mask of the two outputs, as the chain applies it to the mixture
                mask = est_mag / ops.maximum(ops.sum(est_mag, axis=-1, keepdims=True), 1e-12)
                sdr = (sdr + _sdr(ref, waveforms(mask * mix_re, mask * mix_im))) / 2
            return -ops.mean(sdr, axis=-1)

        def get_config(self):
            return {**super().get_config(), "norm": self.norm, "scaler": self.scaler, "n_sources": self.n_sources,
                    "masked": self.masked}

    def _sdr(ref, est):
        """(batch, sources) SDR in dB of (batch, sources, samples) waveforms."""
        signal = ops.sum(ref ** 2, axis=-1)
        error = ops.sum((ref - est) ** 2, axis=-1)
        return (10.0 / math.log(10.0)) * (ops.log(signal + SDR_EPS) - ops.log(error + SDR_EPS))

    _SDR_CLASS = WaveformSDR
    return _SDR_CLASS
