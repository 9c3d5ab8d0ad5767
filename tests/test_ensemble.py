"""bench/ensemble.py: several runs' models averaged into one run that loads, exports and separates;
model.build_ensemble."""
import importlib.util

import numpy as np
import pytest

from conftest import ROOT, train_tiny

spec = importlib.util.spec_from_file_location("ensemble", ROOT / "bench" / "ensemble.py")
ensemble = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ensemble)


def test_ensemble_is_the_members_mean_and_loads_and_exports(tiny_run, tiny_cache, tmp_path):
    pytest.importorskip("tf2onnx")
    import export
    import runs
    from separation import WindowModel
    wider = train_tiny(tiny_cache, tmp_path / "base4", "--base-filters", "4", "--seed", "1")   # sizes may differ
    out = ensemble.ensemble([tiny_run, wider], tmp_path / "ens")
    x = export.check_windows(2, seed=3)
    members = [np.asarray(runs.load_run(run)[0](x)) for run in (tiny_run, wider)]
    assert not np.allclose(members[0], members[1])          # different members, so the test can fail
    net, config = runs.load_run(out)
    np.testing.assert_allclose(np.asarray(net(x)), (members[0] + members[1]) / 2, rtol=1e-5, atol=1e-6)
    assert [m["base_filters"] for m in config["ensemble"]["members"]] == [2, 4]
    record = export.export(out, "onnx")                     # one graph, checked against Keras by export
    assert record["max_abs_difference"] <= export.TOLERANCE * record["largest_output"]
    from separation import load_window_model
    onnx_model = load_window_model(out, backend="onnx")
    keras_model = WindowModel.from_run(out)
    np.testing.assert_allclose(onnx_model.forward(x), keras_model.forward(x), atol=1e-4 * np.abs(keras_model.forward(x)).max())
    with pytest.raises(SystemExit, match="exists"):
        ensemble.ensemble([tiny_run, wider], out)
    with pytest.raises(SystemExit, match="an ensemble itself"):     # first member too
        ensemble.ensemble([out, tiny_run], tmp_path / "nested")
    import model
    import train
    with pytest.raises(SystemExit, match="ensemble of runs"):     # no member to grow or copy from
        train.init_from(model.build_unet(2, "paper", "direct"), out)


def test_members_with_other_outputs_are_refused(tiny_run, tiny_cache, tmp_path):
    two = train_tiny(tiny_cache, tmp_path / "two", "--target", "direct2")
    with pytest.raises(SystemExit, match="target"):
        ensemble.ensemble([tiny_run, two], tmp_path / "ens")
    assert not (tmp_path / "ens").exists() and not (tmp_path / "ens.partial").exists()
