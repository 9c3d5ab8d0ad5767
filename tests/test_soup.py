"""bench/soup.py: weight averaging of runs into a run that loads and separates; bench/ablation.py's commands."""
import importlib.util
import json

import h5py
import numpy as np
import pytest

from conftest import ROOT, model_weights, train_tiny

spec = importlib.util.spec_from_file_location("soup", ROOT / "bench" / "soup.py")
soup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soup)


def test_soup_is_the_members_mean_and_loads(tiny_run, tiny_cache, tmp_path):
    from separation import WindowModel
    other = train_tiny(tiny_cache, tmp_path / "seed1", "--seed", "1")
    out = soup.soup([tiny_run, other], tmp_path / "soup")
    a, b, mean = ({k: v for k, v in model_weights(run / "best.weights.h5").items() if v.dtype.kind == "f"}
                  for run in (tiny_run, other, out))
    assert a.keys() == mean.keys() and len(mean) > 4
    assert any(not np.allclose(a[k], b[k]) for k in a)           # different members, so the test can fail
    for name in mean:
        np.testing.assert_allclose(mean[name], (a[name] + b[name]) / 2, rtol=1e-6, atol=1e-7)
    with h5py.File(out / "best.weights.h5", "r") as f:
        assert "optimizer" not in f
    model = WindowModel.from_run(out)
    assert model.source_mags(np.ones((1, 512, 128, 1), np.float32)).shape[:3] == (1, 512, 128)
    with pytest.raises(SystemExit, match="exists"):
        soup.soup([tiny_run, other], out)


def test_members_of_different_architectures_are_refused(tiny_run, tiny_cache, tmp_path):
    wider = train_tiny(tiny_cache, tmp_path / "base4", "--base-filters", "4")
    with pytest.raises(SystemExit, match="share one architecture"):
        soup.soup([tiny_run, wider], tmp_path / "soup")
    assert not (tmp_path / "soup").exists() and not (tmp_path / "soup.partial").exists()


def test_ablation_commands_show_flags_as_flags_and_only_the_options_a_run_used():
    import sys
    sys.path.append(str(ROOT / "bench"))         # as when run as a script: its helpers sit beside it
    spec = importlib.util.spec_from_file_location("ablation", ROOT / "bench" / "ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    args = {"loss": "sdr", "clipnorm": 0, "freeze_batchnorm": True, "online_remix": None, "remix_coherent": 1.0,
            "remix_gain": [1.0, 1.0], "data": ["data/r2"], "seed": 0}
    assert ablation.train_command(args) == "python train.py --loss sdr --freeze-batchnorm --data data/r2"
    args.update(online_remix="data/full-src", clipnorm=1.0, freeze_batchnorm=False)
    assert ablation.train_command(args) == ("python train.py --loss sdr --clipnorm 1.0 --online-remix data/full-src "
                                            "--remix-coherent 1.0 --remix-gain 1.0 1.0 --data data/r2")
    args = {"loss": "sdr", "source_weight": [["musdb", 8], ["mir1k", 2]], "data": ["data/r2"]}
    assert ablation.train_command(args) == ("python train.py --loss sdr --source-weight musdb=8 "
                                            "--source-weight mir1k=2 --data data/r2")
    args = {"loss": "sdr", "teacher": None, "teacher_weight": 0.5, "data": ["data/r2"]}
    assert ablation.train_command(args) == "python train.py --loss sdr --data data/r2"     # no teacher: no weight
    args["teacher"] = "pretrained/quality"
    assert ablation.train_command(args) == ("python train.py --loss sdr --teacher pretrained/quality "
                                            "--teacher-weight 0.5 --data data/r2")
    args = {"arch": "paper", "loss": "sdr", "data": ["data/r2"]}
    assert ablation.train_command(args) == "python train.py --loss sdr --data data/r2"     # the default U-Net
    args["arch"] = "jansson"
    assert ablation.train_command(args) == "python train.py --arch jansson --loss sdr --data data/r2"


def test_ablation_rows_say_how_many_training_songs_are_remixes(tiny_run):
    import sys
    sys.path.append(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("ablation", ROOT / "bench" / "ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    config = json.loads((tiny_run / "config.json").read_text())
    assert sum(config["data"]["train_sources"].values()) == config["data"]["train_songs"]   # recorded by train.py
    assert "remixes" not in ablation.describe(config)["training"]
    config["data"]["train_sources"] = {"musdb": 2, "remix": 5}
    assert ablation.describe(config)["training"].endswith(", 5 of them offline remixes (data_prep.py --remix)")
    config["data"]["train_sources"] = {"musdb": 2, "speed": 8}
    assert ablation.describe(config)["training"].endswith(", 8 of them speed copies (data_prep.py --speed)")
    del config["data"]["train_sources"]                  # a run made before train.py recorded them:
    assert ablation.train_sources(config) == {"musdb": config["data"]["train_songs"]}   # read from its caches


def test_bn_recalibration_sets_each_moving_mean_to_its_input_mean_and_changes_nothing_else(tiny_run, tiny_cache,
                                                                                           tmp_path):
    import keras

    import normalize
    import runs
    from cache import WindowStore, resolve_caches
    spec = importlib.util.spec_from_file_location("recalibrate_bn", ROOT / "bench" / "recalibrate_bn.py")
    recal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recal)
    store = WindowStore(resolve_caches([tiny_cache], "train"))
    out = recal.recalibrate(tiny_run, tmp_path / "bn", [str(tiny_cache)], batch_size=len(store), progress=False)
    before, after = model_weights(tiny_run / "best.weights.h5"), model_weights(out / "best.weights.h5")
    assert before.keys() == after.keys()
    moved = {k for k in before if not np.array_equal(before[k], after[k])}
    assert moved and all("batch_normalization" in k and k.endswith(("vars/2", "vars/3")) for k in moved)   # moving mean, variance

    # one batch of every window: the first BN layer's moving mean is the mean of its input over them
    net, config = runs.load_run(out)
    settings = runs.RunSettings.from_config(config)
    mix = np.stack([store.read("mix_mag", i) for i in range(len(store))]).astype(np.float32)
    x = normalize.transform(mix, normalize.fit(mix, settings.norm, settings.scaler))
    first = next(layer for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization))
    features = keras.Model(net.inputs, first.input)(x)
    np.testing.assert_allclose(first.moving_mean.numpy(), np.mean(features, axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    assert runs.read_config(out)["bn_recalibration"]["windows"] == len(store)
    with pytest.raises(SystemExit, match="exists"):
        recal.recalibrate(tiny_run, out, [str(tiny_cache)], progress=False)
    with pytest.raises(SystemExit, match="make no batch"):
        recal.recalibrate(tiny_run, tmp_path / "none", [str(tiny_cache)], batch_size=len(store) + 1, progress=False)
    assert not (tmp_path / "none").exists() and not (tmp_path / "none.partial").exists()
