import argparse

import numpy as np
import pytest

import augment
from cache import WindowStore, resolve_caches


def test_splice_is_exact(rng):
    a, b = rng.random((2, 512, 128, 1)).astype(np.float32)
    s = augment.splice(a, b)
    np.testing.assert_array_equal(s[:, :64], a[:, 64:])
    np.testing.assert_array_equal(s[:, 64:], b[:, :64])


@pytest.mark.parametrize("start", [0, 17, 64])
def test_blackout_is_exact(rng, start):
    a = rng.random((512, 128, 1)).astype(np.float32) + 0.1
    out = augment.blackout(a, start)
    assert np.all(out[:, start:start + 64] == 0)
    keep = np.ones(128, bool)
    keep[start:start + 64] = False
    np.testing.assert_array_equal(out[:, keep], a[:, keep])
    assert np.all(a > 0)                       # the input is not modified


@pytest.mark.parametrize("n", [1, 10, 101])
def test_composition_counts(n):
    assert augment.composition(n, augment.parse_mix("paper")) == (n, n, round(n / 2))
    assert augment.composition(n, augment.parse_mix("40/40/20")) == (n, n, round(n / 2))
    assert augment.composition(n, augment.parse_mix("4/2/1")) == (n, round(n / 2), round(n / 4))
    assert augment.composition(n, augment.parse_mix("released")) == (n, (n - 1) // 2, n // 4)


def test_parse_mix_rejects_nonsense():
    for bad in ("40/40", "a/b/c", "0/50/50", "-1/1/1"):
        with pytest.raises(argparse.ArgumentTypeError):
            augment.parse_mix(bad)


def test_epoch_recipes(tiny_cache):
    store = WindowStore(resolve_caches([tiny_cache], "train"))
    recipes = augment.epoch_recipes(store, epoch=0, seed=3)
    counts = np.bincount(recipes["kind"], minlength=3)
    n = len(store)
    assert counts.tolist() == [n, n, round(n / 2)]
    splices = recipes[recipes["kind"] == augment.SPLICE]
    assert np.all(splices["second"] == splices["first"] + 1)
    assert np.all(store.song_id[splices["first"]] == store.song_id[splices["second"]])   # within songs
    assert np.all(store.valid_frames[splices["second"]] >= 64)
    black = recipes[recipes["kind"] == augment.BLACKOUT]
    assert black["start"].min() >= 0 and black["start"].max() <= 64
    # deterministic in (seed, epoch), different across epochs
    np.testing.assert_array_equal(recipes, augment.epoch_recipes(store, epoch=0, seed=3))
    assert not np.array_equal(recipes, augment.epoch_recipes(store, epoch=1, seed=3))
    assert len(augment.epoch_recipes(store, 0, 3, augment=False)) == n


def test_make_example_matches_recipe(tiny_cache):
    store = WindowStore(resolve_caches([tiny_cache], "train"))
    recipes = augment.epoch_recipes(store, epoch=0, seed=1, shuffle=False)
    for kind in (augment.ORIGINAL, augment.SPLICE, augment.BLACKOUT):
        r = recipes[recipes["kind"] == kind][0]
        mix, vocal = augment.make_example(store, r)
        a = store.read("mix_mag", r["first"])
        if kind == augment.ORIGINAL:
            np.testing.assert_array_equal(mix, a)
        elif kind == augment.SPLICE:
            np.testing.assert_array_equal(mix, augment.splice(a, store.read("mix_mag", r["second"])))
        else:
            np.testing.assert_array_equal(vocal, augment.blackout(store.read("vocal_mag", r["first"]), r["start"]))


def test_drop_silent_vocals(tiny_cache):
    store = WindowStore(resolve_caches([tiny_cache], "train"))
    store.vocal_abs_sum = store.vocal_abs_sum.copy()
    store.vocal_abs_sum[:2] = 0.0
    kept = augment.usable_windows(store, drop_silent_vocals=True)
    assert 0 not in kept and 1 not in kept and len(kept) == len(store) - 2


def test_source_weight_oversamples_one_source(tiny_cache):
    store = WindowStore(resolve_caches([tiny_cache], "train"))
    store.songs["source"] = ["mir1k"] + list(store.songs["source"][1:])     # song 0 stands for MIR-1K
    other = store.song_id == 0
    plain = augment.epoch_recipes(store, epoch=2, seed=5, shuffle=False)
    weighted = augment.epoch_recipes(store, epoch=2, seed=5, shuffle=False, source_weights={"musdb": 3})
    np.testing.assert_array_equal(weighted[:len(plain)], plain)      # the unweighted epoch, then the copies
    originals = weighted[weighted["kind"] == augment.ORIGINAL]["first"]
    per_window = np.bincount(originals, minlength=len(store))
    assert np.all(per_window[other] == 1) and np.all(per_window[~other] == 3)
    extra = weighted[len(plain):]
    assert np.all(store.song_id[extra["first"]] != 0)                  # copies only of the weighted source
    splices = extra[extra["kind"] == augment.SPLICE]
    assert np.all(store.song_id[splices["first"]] == store.song_id[splices["second"]])
    # deterministic, and shuffled together
    np.testing.assert_array_equal(augment.epoch_recipes(store, 2, 5, source_weights={"musdb": 3}),
                                  augment.epoch_recipes(store, 2, 5, source_weights={"musdb": 3}))
    with pytest.raises(ValueError, match="caches hold the sources"):
        augment.epoch_recipes(store, 0, 0, source_weights={"nope": 2})


def test_parse_source_weight():
    assert augment.parse_source_weight("musdb=8") == ("musdb", 8)
    for bad in ("musdb", "musdb=0", "=3", "musdb=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            augment.parse_source_weight(bad)


def test_vocal_gains_are_seeded_and_in_range():
    gains = augment.vocal_gains(seed=3, batch=7, size=500, max_db=6.0)
    db = 20 * np.log10(gains)
    assert db.min() >= -6.0 and db.max() <= 6.0 and db.std() > 2.0       # spread over the range, not constant
    np.testing.assert_array_equal(gains, augment.vocal_gains(3, 7, 500, 6.0))
    assert not np.array_equal(gains, augment.vocal_gains(3, 8, 500, 6.0))
    np.testing.assert_array_equal(augment.vocal_gains(3, 7, 4, 0.0), np.ones(4))


def test_apply_vocal_gain_remakes_the_mixture(rng):
    """The mixture becomes M + (g - 1) V: with stems that sum to M, that is g V + A; g = 1 changes nothing."""
    shape = (3, 512, 128)
    vocal, accomp = (rng.normal(size=shape) + 1j * rng.normal(size=shape) for _ in range(2))
    mix = vocal + accomp
    spectra = np.stack([part for s in (mix, vocal, accomp) for part in (s.real, s.imag)], axis=-1).astype(np.float32)
    arrays = {"mix_mag": np.abs(mix)[..., None].astype(np.float32), "vocal_mag": np.abs(vocal)[..., None].astype(np.float32),
              "accomp_mag": np.abs(accomp)[..., None].astype(np.float32), "spectra": spectra}
    gains = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    out = augment.apply_vocal_gain(arrays, gains)
    g = gains[:, None, None]
    new_mix = out["spectra"][..., 0] + 1j * out["spectra"][..., 1]
    np.testing.assert_allclose(new_mix, g * vocal + accomp, atol=1e-5)
    np.testing.assert_allclose(out["spectra"][..., 2] + 1j * out["spectra"][..., 3], g * vocal, atol=1e-5)
    np.testing.assert_array_equal(out["spectra"][..., 4:], spectra[..., 4:])
    np.testing.assert_allclose(out["mix_mag"][..., 0], np.abs(g * vocal + accomp), atol=1e-5)
    np.testing.assert_allclose(out["vocal_mag"][..., 0], g * np.abs(vocal), rtol=1e-6)
    np.testing.assert_array_equal(out["accomp_mag"], arrays["accomp_mag"])
    for name in arrays:                                      # example 1 (g = 1) as it was
        np.testing.assert_allclose(out[name][1], arrays[name][1], atol=1e-6)


@pytest.mark.parametrize("loss", ["sdrmask", "mse"])
def test_training_batches_with_vocal_gain(tiny_cache, loss):
    """Fixed-window batches with --vocal-gain-db: the originals' vocals scaled, the mixture remade,
    the same batch for the same (seed, batch), the spectra read for the gain dropped when the loss has no use for them."""
    import pipeline
    store = WindowStore(resolve_caches([tiny_cache], "train"))
    cfg = pipeline.PipelineConfig(norm="time", scaler="robust", target="direct2", batch_size=4, loss=loss, seed=1)
    gained = pipeline.PipelineConfig(**{**cfg.__dict__, "vocal_gain_db": 6.0})

    def batch(c, k=0):
        return pipeline.fixed_window_batch(store, c, pipeline._EpochRecipes(store, c, 8), pipeline.WindowReader(store), 2, k)

    plain, out = batch(cfg), batch(gained)
    assert list(out) == list(plain) == list(pipeline.window_names(cfg))
    gains = augment.vocal_gains(1, 0, 4, 6.0)
    np.testing.assert_allclose(out["vocal_mag"], plain["vocal_mag"] * gains[:, None, None, None], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["accomp_mag"], plain["accomp_mag"])
    assert not np.allclose(out["mix_mag"], plain["mix_mag"])
    for name in out:
        np.testing.assert_array_equal(out[name], batch(gained)[name])      # deterministic
    assert not np.allclose(batch(gained, 1)["vocal_mag"], batch(cfg, 1)["vocal_mag"] * gains[:, None, None, None])
