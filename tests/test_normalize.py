import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler

import normalize


def _windows(rng, n=3):
    return (rng.gamma(1.0, 2.0, size=(n, 512, 128, 1)) * (rng.random((n, 512, 1, 1)) > 0.1)).astype(np.float32)


def _sklearn(window, axis, scaler_cls):
    m = window[..., 0].astype(np.float64)
    if axis == "frequency":          # features = bins, samples = frames
        return scaler_cls().fit_transform(m.T).T
    return scaler_cls().fit_transform(m)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("scaler,cls", [("minmax", MinMaxScaler), ("robust", RobustScaler)])
def test_matches_sklearn_per_window(rng, axis, scaler, cls):
    mix = _windows(rng)
    ours = normalize.transform(mix, normalize.fit(mix, axis, scaler)).numpy()
    for i in range(len(mix)):
        np.testing.assert_allclose(ours[i, ..., 0], _sklearn(mix[i], axis, cls), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("axis", normalize.AXES)
def test_max_scaler_is_released_code(rng, axis):
    mix = _windows(rng, 2)
    reduce = 2 if axis == "frequency" else 1
    expected = mix / mix.max(axis=reduce, keepdims=True).clip(min=1e-30)
    expected = np.where(mix.max(axis=reduce, keepdims=True) > 0, expected, mix)
    np.testing.assert_allclose(normalize.transform(mix, normalize.fit(mix, axis, "max")).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("scaler", normalize.SCALERS)
def test_vocal_uses_mixture_stats_and_round_trips(rng, axis, scaler):
    mix = _windows(rng)
    vocal = mix * rng.random(mix.shape).astype(np.float32)
    stats = normalize.fit(mix, axis, scaler)
    mix_n, vocal_n = normalize.normalize_pair(mix, vocal, axis, scaler)
    np.testing.assert_allclose(vocal_n.numpy(), normalize.transform(vocal, stats).numpy())
    np.testing.assert_allclose(normalize.inverse(vocal_n, stats).numpy(), vocal, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(normalize.inverse(mix_n, stats).numpy(), mix, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", normalize.AXES)
@pytest.mark.parametrize("scaler", normalize.SCALERS)
def test_zero_range_gives_no_nan(axis, scaler):
    mix = np.zeros((2, 512, 128, 1), np.float32)
    mix[1] = 3.0                                  # constant, non-zero window
    mix[1, 10, 5] = 0.0                           # one odd value
    out = normalize.transform(mix, normalize.fit(mix, axis, scaler)).numpy()
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
                               normalize.transform(mix[2:], normalize.fit(mix[2:], "frequency", "robust")).numpy(),
                               rtol=1e-5, atol=1e-5)
