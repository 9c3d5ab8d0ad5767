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
