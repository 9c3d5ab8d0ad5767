"""Separating songs with a trained run: shared by evaluate.py and separate.py.

Windows are normalized with the run's scaler (statistics of each mixture window), predicted
in batches, and mapped back to magnitudes with the same statistics (target "direct") or used
as a mask on the mixture magnitude (target "mask"). Vocal magnitude x mixture phase -> iSTFT
(Nyquist row restored) -> trimmed to the song's exact length; accompaniment = mixture - vocals.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf     # normalize needs it at import anyway

import audio
import normalize


class Separator:
    """A loaded model plus the normalization it was trained with.

    Args:
        model: a Keras model from model.build_unet / model.load_run.
        norm, scaler, target: the run's settings (config["args"]).
        batch_size: windows per forward pass.
    """

    def __init__(self, model, norm: str, scaler: str, target: str, batch_size: int = 8):
        self.model, self.norm, self.scaler, self.target = model, norm, scaler, target
        self.batch_size = batch_size
        # Calling a tf.function uses both cores here; model.predict used about one. One signature
        # with an open batch size: a song's last, smaller batch does not trace the model again.
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        self._forward = tf.function(self._vocal_mag_graph, input_signature=[spec])

    def _vocal_mag_graph(self, mix):
        stats = normalize.fit(mix, self.norm, self.scaler)
        y = self.model(normalize.transform(mix, stats), training=False)
        vocal = y * mix if self.target == "mask" else normalize.inverse(y, stats)
        # A magnitude cannot be negative; direct regression can undershoot zero.
        return tf.maximum(vocal, 0.0)

    @classmethod
    def from_run(cls, run_dir: str | Path, weights: str = "best", batch_size: int = 8) -> "Separator":
        import model as model_lib
        net, config = model_lib.load_run(run_dir, weights)
        args = config["args"]
        sep = cls(net, args["norm"], args["scaler"], args["target"], batch_size)
        sep.config, sep.run_dir = config, Path(run_dir)
        return sep

    def vocal_mag(self, mix_mag: np.ndarray) -> np.ndarray:
        """Estimated vocal magnitudes for mixture windows (n, N_BINS, WINDOW_FRAMES, 1)."""
        out = np.empty_like(mix_mag, dtype=np.float32)
        for start in range(0, len(mix_mag), self.batch_size):
            mix = mix_mag[start:start + self.batch_size].astype(np.float32)
            out[start:start + len(mix)] = self._forward(mix).numpy()
        return out


def windows_to_wave(mag_windows: np.ndarray, phase_windows: np.ndarray, valid_frames: np.ndarray,
                    length: int) -> np.ndarray:
    """Magnitude and phase windows of one song -> its waveform at SAMPLE_RATE, exact length."""
    return audio.reconstruct(audio.from_windows(mag_windows, valid_frames),
                             audio.from_windows(phase_windows, valid_frames), length)


def separate_cached_song(store, song: int, separator: Separator) -> tuple[np.ndarray, np.ndarray]:
    """(vocal magnitude windows, vocal waveform) of a song in a cache."""
    mix_mag = store.read_song("mix_mag", song)
    vocal_mag = separator.vocal_mag(mix_mag)
    valid = store.valid_frames[store.song_id == song]
    wave = windows_to_wave(vocal_mag, store.read_song("mix_phase", song), valid, store.songs["length"][song])
    return vocal_mag, wave
