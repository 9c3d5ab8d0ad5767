"""Knowledge distillation for the SDR loss: a trained model's estimates blended into the references.

    python train.py ... --loss sdr --teacher pretrained/quality --teacher-weight 0.5

For every training batch the teacher (a run folder: its ONNX export when current, else its Keras
model; an ensemble such as pretrained/quality works too) estimates the vocal and accompaniment
magnitudes from the batch's mixture windows; each source's reference spectrum in the SDR loss's
label becomes

    weight * teacher magnitude * mixture phase + (1 - weight) * the true source's spectrum,

so a small student learns what a larger model or an ensemble makes of the same mixture, with
the truth still pulling. The teacher sees the augmented window the student sees (after splice and
blackout), so its estimate matches the example. Validation keeps the true references: the
validation loss stays comparable with runs trained without a teacher.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

MIX, VOCALS, ACCOMP = 0, 2, 4           # first (real) channel of each spectrum in the SDR label's spectra


class Teacher:
    """A run's window model that rewrites the SDR loss's reference spectra of a batch.

    Args:
        run_dir: the teacher run (two sources, or vocals only: then the accompaniment's magnitude
            is the mixture's minus the vocals', floored at 0).
        weight: share of the teacher in each reference, in [0, 1] (0: the truth alone).
        backend: separation.load_window_model's backend ("auto": its export when current).
    """

    def __init__(self, run_dir: str | Path, weight: float, backend: str = "auto"):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"teacher weight must be in [0, 1], not {weight}")
        import separation
        self.run_dir, self.weight = Path(run_dir), float(weight)
        self.model = separation.load_window_model(self.run_dir, backend, batch_size=16)

    def describe(self) -> dict:
        """Provenance for the student's config.json."""
        return {"run": str(self.run_dir), "name": self.model.config.get("name"), "weight": self.weight,
                "backend": self.model.backend, "weights_sha1": _digest(self.run_dir)}

    def estimates(self, mix_mag: np.ndarray) -> np.ndarray:
        """(B, bins, frames, 2) vocal and accompaniment magnitudes for (B, bins, frames, 1) mixture windows."""
        est = self.model.source_mags(mix_mag.astype(np.float32, copy=False))
        if est.shape[-1] == 1:
            est = np.concatenate([est, np.maximum(mix_mag - est, 0.0)], axis=-1)
        return np.maximum(est, 0.0)

    def blend(self, mix_mag: np.ndarray, spectra: np.ndarray) -> np.ndarray:
        """The batch's label spectra (B, bins, frames, 6: mixture, vocals, accompaniment, each real
        and imaginary) with both sources' references blended towards the teacher; a new array."""
        if self.weight == 0.0:
            return spectra
        mix = spectra[..., MIX] + 1j * spectra[..., MIX + 1]
        mix_abs = np.abs(mix)
        phase = np.divide(mix, mix_abs, out=np.zeros_like(mix), where=mix_abs > 1e-12)
        est = self.estimates(mix_mag)
        out = spectra.copy()
        for k, channel in enumerate((VOCALS, ACCOMP)):
            taught = est[..., k] * phase
            out[..., channel] = self.weight * taught.real + (1 - self.weight) * spectra[..., channel]
            out[..., channel + 1] = self.weight * taught.imag + (1 - self.weight) * spectra[..., channel + 1]
        return out


def _digest(run_dir: Path) -> str | None:
    import separation
    try:
        return separation.weights_digest(run_dir)
    except OSError:                     # runs.RunError is one: a run without a weights file
        return None
