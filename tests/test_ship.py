"""bench/ship.py: a run copied into a shipped model folder loads to the same model, without optimizer state."""
import importlib.util
import json

import h5py
import numpy as np
import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("ship", ROOT / "bench" / "ship.py")
ship = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ship)


def test_ship_copies_the_model_without_optimizer_state_and_drops_stale_exports(tiny_run, tmp_path):
    import runs
    from export import check_windows
    with h5py.File(tiny_run / "best.weights.h5", "r") as f:
        had_optimizer = "optimizer" in f
    target = tmp_path / "quality"
    target.mkdir()
    (target / "MODEL_CARD.md").write_text("by hand")
    (target / "model.onnx").write_bytes(b"old")
    (target / "export.json").write_text(json.dumps({"model.onnx": {"weights_sha1": "0" * 16}}))
    written = ship.ship(tiny_run, target, wiener_iterations=2)
    assert {"best.weights.h5", "config.json"} <= set(written)
    import separation
    # the shipped model's own post-filter default overrides the generic one (0 for this one-source run)
    assert separation.default_wiener_iterations(runs.read_config(tiny_run)) == 0
    assert separation.default_wiener_iterations(runs.read_config(target)) == 2
    assert separation.Separator.from_run(target).song_separator.wiener_iterations == 2
    with h5py.File(target / "best.weights.h5", "r") as f:
        assert "optimizer" not in f and "layers" in f
    if had_optimizer:
        assert (target / "best.weights.h5").stat().st_size < (tiny_run / "best.weights.h5").stat().st_size
    x = check_windows(2)
    np.testing.assert_array_equal(np.asarray(runs.load_run(target)[0](x)), np.asarray(runs.load_run(tiny_run)[0](x)))
    assert (target / "MODEL_CARD.md").read_text() == "by hand"
    assert not (target / "model.onnx").exists() and not (target / "export.json").exists()
    assert not list(target.glob("*.partial"))
    with pytest.raises(SystemExit, match="not a complete run"):
        ship.ship(tmp_path / "nothing", target)


def test_shipping_a_folder_onto_itself_only_records_its_defaults(tiny_run, tmp_path):
    import shutil
    import runs
    import separation
    folder = tmp_path / "fast"
    shutil.copytree(tiny_run, folder)
    weights = (folder / "best.weights.h5").read_bytes()
    assert separation.default_channels(runs.read_config(folder)) == separation.DEFAULT_CHANNELS
    assert ship.ship(folder, folder, wiener_iterations=1, channels="mix") == ["config.json"]
    assert ship.ship(folder, folder, channels="both") == ["config.json"]        # one setting at a time
    assert ship.ship(folder, folder, speeds=[1.0, 0.944, 1.059], speeds_when="one-input") == ["config.json"]
    config = runs.read_config(folder)
    assert config["separation"] == {"wiener_iterations": 1, "channels": "both", "speeds": [1.0, 0.944, 1.059],
                                    "speeds_when": "one-input"}
    chain = separation.Separator.from_run(folder).song_separator
    assert (chain.speeds, chain.speeds_when) == ((1.0, 0.944, 1.059), "one-input")
    assert chain.speeds_for(1, 2) == (1.0, 0.944, 1.059) and chain.speeds_for(2, 2) == (1.0,)
    chain.speeds_when = "mono"
    assert chain.speeds_for(1, 1) == (1.0, 0.944, 1.059) and chain.speeds_for(1, 2) == (1.0,)
    chosen = separation.Separator.from_run(folder, speeds=(1.0, 1.059)).song_separator      # the user's: always
    assert (chosen.speeds, chosen.speeds_when, chosen.speeds_for(2, 2)) == ((1.0, 1.059), "always", (1.0, 1.059))
    assert (folder / "best.weights.h5").read_bytes() == weights
    separator = separation.Separator.from_run(folder)
    assert (separator.song_separator.channels, separator.song_separator.wiener_iterations) == ("both", 1)
    assert separation.Separator.from_run(folder, channels="each").song_separator.channels == "each"
    # runs made from a shipped model start from the generic defaults, not the shipped copy's
    assert "separation" not in runs.derived_config(folder)
    copy = tmp_path / "copy"
    ship.ship(folder, copy)
    assert "separation" not in runs.read_config(copy)


def test_the_page_gives_each_model_its_own_recorded_channels(tiny_run, tmp_path):
    import shutil
    import app
    fast, quality = tmp_path / "fast", tmp_path / "quality"
    for folder, channels in ((fast, "mix"), (quality, "each")):
        shutil.copytree(tiny_run, folder)
        ship.ship(folder, folder, channels=channels)
    service = app.Service({"fast": fast, "quality": quality}, tmp_path / "jobs", 1, 1, 1)
    try:
        assert {name: s.song_separator.channels for name, s in service.separators.items()} == \
            {"fast": "mix", "quality": "each"}
    finally:
        service.worker.shutdown()
