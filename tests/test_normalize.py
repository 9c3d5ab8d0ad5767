import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler

import normalize


@pytest.fixture(params=["numpy", "tensor"])
def as_input(request):
    """The same windows as a NumPy array (the reader threads' path) or a tensor (keras.ops: the model's
    and the loss's graphs): normalize.namespace picks the namespace, and every result must agree."""
    if request.param == "numpy":
        return lambda a: a
    import tensorflow as tf
    return tf.constant


def _windows(rng, n=3):
    return (rng.gamma(1.0, 2.0, size=(n, 512, 128, 1)) * (rng.random((n, 512, 1, 1)) > 0.1)).astype(np.float32)


def _sklearn(window, axis, scaler_cls):
    m = window[..., 0].astype(np.float64)
    if axis == "frequency":          # features = bins, samples = frames
        return scaler_cls().fit_transform(m.T).T
    return scaler_cls().fit_transform(m)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("scaler,cls", [("minmax", MinMaxScaler), ("robust", RobustScaler)])
def test_matches_sklearn_per_window(rng, axis, scaler, cls, as_input):
    mix = _windows(rng)
    x = as_input(mix)
    ours = np.asarray(normalize.transform(x, normalize.fit(x, axis, scaler)))
    for i in range(len(mix)):
        np.testing.assert_allclose(ours[i, ..., 0], _sklearn(mix[i], axis, cls), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("axis", normalize.AXES)
def test_max_scaler_is_released_code(rng, axis, as_input):
    mix = _windows(rng, 2)
    reduce = 2 if axis == "frequency" else 1
    expected = mix / mix.max(axis=reduce, keepdims=True).clip(min=1e-30)
    expected = np.where(mix.max(axis=reduce, keepdims=True) > 0, expected, mix)
    x = as_input(mix)
    np.testing.assert_allclose(np.asarray(normalize.transform(x, normalize.fit(x, axis, "max"))), expected, rtol=1e-6)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("scaler", normalize.SCALERS)
def test_vocal_uses_mixture_stats_and_round_trips(rng, axis, scaler, as_input):
    mix = _windows(rng)
    vocal = mix * rng.random(mix.shape).astype(np.float32)
    mix_in, vocal_in = as_input(mix), as_input(vocal)
    stats = normalize.fit(mix_in, axis, scaler)
    mix_n, vocal_n = normalize.normalize_pair(mix_in, vocal_in, axis, scaler)
    np.testing.assert_allclose(np.asarray(vocal_n), np.asarray(normalize.transform(vocal_in, stats)))
    np.testing.assert_allclose(np.asarray(normalize.inverse(vocal_n, stats)), vocal, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(normalize.inverse(mix_n, stats)), mix, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("scaler", normalize.SCALERS)
def test_numpy_and_keras_paths_agree(rng, axis, scaler):
    """The reader threads scale training batches in NumPy, the exported model and the SDR loss in
    keras.ops: a difference would train the model on inputs it never sees at separation time."""
    import tensorflow as tf
    mix = _windows(rng)
    mix[0, :, 7] = 0.0                            # a silent frame: zero range, scale 1
    before = mix.copy()
    ours = normalize.fit(mix, axis, scaler)
    assert np.array_equal(mix, before)            # the statistics come from a copy (NumPy sorts in place)
    theirs = normalize.fit(tf.constant(mix), axis, scaler)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in ours)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(normalize.transform(mix, ours), normalize.transform(tf.constant(mix), theirs).numpy(),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("scaler", normalize.SCALERS)
def test_zero_range_gives_no_nan(axis, scaler, as_input):
    mix = np.zeros((2, 512, 128, 1), np.float32)
    mix[1] = 3.0                                  # constant, non-zero window
    mix[1, 10, 5] = 0.0                           # one odd value
    x = as_input(mix)
    out = np.asarray(normalize.transform(x, normalize.fit(x, axis, scaler)))
    assert np.all(np.isfinite(out))
    assert np.all(out[0] == 0)


def test_rejects_unknown_names(rng):
    with pytest.raises(ValueError, match="axis"):
        normalize.fit(_windows(rng, 1), "diagonal", "minmax")
    with pytest.raises(ValueError, match="scaler"):
        normalize.fit(_windows(rng, 1), "time", "zscore")


def test_works_in_tf_data(rng):
    import tensorflow as tf
    mix = _windows(rng, 4)
    ds = tf.data.Dataset.from_tensor_slices((mix, mix)).batch(2).map(
        lambda m, v: normalize.normalize_pair(m, v, "frequency", "robust"))
    batches = list(ds)
    assert batches[0][0].shape == (2, 512, 128, 1)
    np.testing.assert_allclose(batches[1][0].numpy(),
                               normalize.transform(mix[2:], normalize.fit(mix[2:], "frequency", "robust")),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_transform_channels_is_each_source_transformed(rng, axis, channels, as_input):
    """The label of two-source targets: NumPy's interleave-then-scale gives transform() per channel."""
    mix = _windows(rng)
    sources = [mix * rng.random(mix.shape).astype(np.float32) for _ in range(channels)]
    stats = normalize.fit(as_input(mix), axis, "robust")
    got = np.asarray(normalize.transform_channels([as_input(s) for s in sources], stats))
    assert got.shape == (*mix.shape[:-1], channels)
    for c, s in enumerate(sources):
        np.testing.assert_allclose(got[..., c:c + 1], np.asarray(normalize.transform(as_input(s), stats)), rtol=1e-6,
                                   atol=1e-6)
