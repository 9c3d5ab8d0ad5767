"""Knowledge distillation (distill.py, train.py --teacher): the blended references and the pipeline that uses them."""
import json

import numpy as np
import pytest

from conftest import train_tiny

SDR_RUN = ("--loss", "sdr", "--target", "direct2", "--norm", "time", "--scaler", "robust")


@pytest.fixture(scope="module")
def teacher_run(tiny_cache, tmp_path_factory):
    """A tiny two-source SDR-loss run to teach with."""
    return train_tiny(tiny_cache, tmp_path_factory.mktemp("distill") / "teacher", *SDR_RUN)


def _batch(rng, n=2):
    """Random (mix_mag, spectra) with a consistent mixture: |mixture spectrum| = mix_mag."""
    shape = (n, 512, 128)
    mix = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    sources = [rng.normal(size=shape) + 1j * rng.normal(size=shape) for _ in range(2)]
    spectra = np.stack([part for s in (mix, *sources) for part in (s.real, s.imag)], axis=-1).astype(np.float32)
    return np.abs(mix)[..., None].astype(np.float32), spectra


def test_blend_is_the_weighted_mean_of_teacher_and_truth(teacher_run, rng):
    import distill
    mix_mag, spectra = _batch(rng)
    full = distill.Teacher(teacher_run, 1.0)
    est = full.estimates(mix_mag)
    assert est.shape == (2, 512, 128, 2) and est.min() >= 0
    phase = (spectra[..., 0] + 1j * spectra[..., 1]) / mix_mag[..., 0]
    taught = full.blend(mix_mag, spectra)
    np.testing.assert_array_equal(taught[..., :2], spectra[..., :2])          # the mixture is never changed
    for k, channel in enumerate((2, 4)):
        np.testing.assert_allclose(taught[..., channel] + 1j * taught[..., channel + 1], est[..., k] * phase,
                                   rtol=1e-4, atol=1e-5)
    half = distill.Teacher(teacher_run, 0.5).blend(mix_mag, spectra)
    np.testing.assert_allclose(half[..., 2:], (taught[..., 2:] + spectra[..., 2:]) / 2, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(distill.Teacher(teacher_run, 0.0).blend(mix_mag, spectra), spectra)


def test_vocals_only_teacher_gets_the_complement(tiny_run, rng):
    import distill
    mix_mag, _ = _batch(rng, 1)
    est = distill.Teacher(tiny_run, 1.0).estimates(mix_mag)        # tiny_run: one direct vocals output
    assert est.shape[-1] == 2
    np.testing.assert_allclose(est[..., 1], np.maximum(mix_mag[..., 0] - est[..., 0], 0), atol=1e-6)


def test_teacher_weight_out_of_range(teacher_run):
    import distill
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        distill.Teacher(teacher_run, 1.5)


def test_training_batches_carry_the_teachers_references(teacher_run, tiny_cache):
    """The tf.data batches a run trains on: with weight 1 each source's reference is the teacher's
    estimate with the mixture's phase, without a teacher the truth."""
    import distill
    import pipeline
    from cache import WindowStore, resolve_caches
    store = WindowStore(resolve_caches([str(tiny_cache)], "train"))
    cfg = pipeline.PipelineConfig(norm="time", scaler="robust", target="direct2", batch_size=4, loss="sdr")
    _, plain = next(iter(pipeline.train_dataset(store, cfg, 1, steps_per_epoch=1)))
    cfg.teacher = distill.Teacher(teacher_run, 1.0)
    _, label = next(iter(pipeline.train_dataset(store, cfg, 1, steps_per_epoch=1)))
    plain, label = np.asarray(plain), np.asarray(label)
    np.testing.assert_array_equal(label[..., :4], plain[..., :4])              # target channels and the mixture
    assert not np.allclose(label[..., 4:], plain[..., 4:])
    mix = label[..., 2] + 1j * label[..., 3]
    est = cfg.teacher.estimates(np.abs(mix)[..., None].astype(np.float32))
    phase = np.divide(mix, np.abs(mix), out=np.zeros_like(mix), where=np.abs(mix) > 1e-12)
    np.testing.assert_allclose(label[..., 4] + 1j * label[..., 5], est[..., 0] * phase, rtol=1e-3, atol=1e-4)


def test_train_records_its_teacher(teacher_run, tiny_cache, tmp_path):
    run = train_tiny(tiny_cache, tmp_path / "student", *SDR_RUN, "--teacher", str(teacher_run),
                     "--teacher-weight", "0.25")
    teacher = json.loads((run / "config.json").read_text())["teacher"]
    assert teacher["weight"] == 0.25 and teacher["run"] == str(teacher_run) and teacher["backend"] == "keras"
    assert len(teacher["weights_sha1"]) == 16


def test_teacher_needs_the_sdr_loss(teacher_run, tiny_cache, tmp_path):
    with pytest.raises(SystemExit, match="--loss sdr"):
        train_tiny(tiny_cache, tmp_path / "student", "--teacher", str(teacher_run))
