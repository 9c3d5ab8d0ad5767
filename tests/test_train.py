import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import model as model_lib
import runs
import train
from conftest import ROOT, model_weights, train_tiny

TINY = ["--base-filters", "4", "--batch-size", "4", "--steps-per-epoch", "3", "--lr", "3e-3", "--verbose", "0"]


def _train(tiny_cache, run_dir, *extra, eager=True):
    """A TINY run; eager unless the traced graph is what a test needs (conftest.train_tiny says why)."""
    train.main(["--data", str(tiny_cache), "--run-dir", str(run_dir), *TINY, *(["--eager"] if eager else []), *extra])
    return json.loads((run_dir / "config.json").read_text())


def _history(run_dir):
    return list(csv.DictReader((run_dir / "history.csv").open()))


@pytest.fixture(scope="module")
def trained_run(tiny_cache, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "frequency-minmax-mae"
    _train(tiny_cache, run_dir, "--epochs", "4", "--steps-per-epoch", "6", "--no-augment", eager=False)
    return run_dir


def test_run_dir_outputs_and_config(trained_run):
    for name in ("best.weights.h5", "last.weights.h5", "resume.keras", "config.json", "history.csv",
                 "training_curves.png"):
        assert (trained_run / name).exists(), name
    config = json.loads((trained_run / "config.json").read_text())
    assert config["status"] == "complete"
    for key in ("norm", "scaler", "loss", "epochs", "batch_size", "lr", "base_filters", "arch", "target", "seed",
                "mix", "augment", "data"):
        assert key in config["args"], key
    assert config["data"]["fingerprint"]["train"] and config["data"]["params"]["n_fft"] == 1024
    assert config["versions"]["tensorflow"] and config["versions"]["keras"]
    assert config["git_commit"] and config["seed"] == 0
    import hardware
    auto_precision = "mixed_bfloat16" if hardware.has_fast_bfloat16() else "float32"
    assert config["hardware"]["precision"] == auto_precision and config["hardware"]["jit"] is False
    r = config["results"]
    assert r["completed_epochs"] == 4 and r["best_epoch"] in range(1, 5) and r["examples_per_second"] > 0


def test_loss_goes_down(trained_run):
    losses = [float(row["loss"]) for row in _history(trained_run)]
    assert losses[-1] < losses[0]


def test_weights_reload_to_identical_predictions(trained_run, rng):
    import keras
    x = rng.random((2, 512, 128, 1)).astype(np.float32)
    net, config = runs.load_run(trained_run, weights="last")
    full = keras.models.load_model(trained_run / "resume.keras")
    if config["hardware"]["precision"] == "float32":
        np.testing.assert_array_equal(net(x, training=False).numpy(), full(x, training=False).numpy())
    # (a bfloat16 checkpoint computes in bfloat16 as it trained; load_run rebuilds in float32: same weights)
    for loaded, saved in zip(net.get_weights(), full.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, saved)
    best, _ = runs.load_run(trained_run)
    assert best(x).shape == (2, 512, 128, 1) and config["args"]["base_filters"] == 4


def test_load_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        runs.load_run(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="best.weights.h5"):
        runs.load_run(tmp_path)


@pytest.mark.slow
def test_interrupt_then_resume(tiny_cache, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real = runs.EpochState.on_epoch_end

    def ctrl_c_after_first_epoch(self, net, epoch, logs):
        real(self, net, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.EpochState, "on_epoch_end", ctrl_c_after_first_epoch)
    with pytest.raises(SystemExit) as exit_info:
        _train(tiny_cache, run_dir, "--epochs", "3")
    assert exit_info.value.code == 130
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "interrupted" and config["state"]["completed_epochs"] == 1
    first_epoch_seconds = config["results"]["train_seconds"]
    assert first_epoch_seconds > 0
    with pytest.raises(SystemExit, match="--resume"):          # refuses to silently restart
        _train(tiny_cache, run_dir, "--epochs", "3")
    monkeypatch.setattr(runs.EpochState, "on_epoch_end", real)
    config = _train(tiny_cache, run_dir, "--epochs", "3", "--resume")
    assert config["status"] == "complete" and config["results"]["completed_epochs"] == 3
    assert config["results"]["train_seconds"] > first_epoch_seconds        # the time before the interruption counts
    assert [int(row["epoch"]) for row in _history(run_dir)] == [0, 1, 2]


@pytest.mark.slow
def test_grid_names_and_skips(tiny_cache, tmp_path, monkeypatch, capsys):
    seen = []
    real = train.train_one

    def record(args, strategy=None):
        seen.append(runs.run_name(args))
        if len(seen) == 1:
            return real(args)
        return {"name": runs.run_name(args), "results": {"best_val_loss": 1.0}}

    monkeypatch.setattr(train, "train_one", record)
    grid = ["--grid", "--data", str(tiny_cache), "--runs-root", str(tmp_path), "--epochs", "1", "--eager", *TINY]
    train.main(grid)
    assert seen == [f"{n}-{s}-{l}" for n in ("frequency", "time") for s in ("minmax", "robust") for l in ("mae", "mse")]
    assert (tmp_path / "frequency-minmax-mae" / "best.weights.h5").exists()
    monkeypatch.setattr(train, "train_one", real)
    capsys.readouterr()
    train.train_one(train.build_parser().parse_args(
        ["--data", str(tiny_cache), "--runs-root", str(tmp_path), "--epochs", "1", *TINY]))
    assert "is complete; skipped" in capsys.readouterr().out


@pytest.mark.parametrize("arch,target", [("paper", "mask"), ("paper", "masked"), ("jansson", "direct"),
                                         ("jansson", "mask")])
def test_architectures_train(tiny_cache, tmp_path, arch, target):
    config = _train(tiny_cache, tmp_path / "run", "--epochs", "1", "--steps-per-epoch", "1",
                    "--arch", arch, "--target", target, "--base-filters", "2")
    assert config["status"] == "complete" and np.isfinite(config["results"]["best_val_loss"])


def test_masked_target_stays_between_zero_and_the_input():
    net = model_lib.build_unet(2, "paper", "masked")
    x = np.random.default_rng(0).uniform(0, 3, (2, 512, 128, 1)).astype(np.float32)
    y = np.asarray(net(x))
    assert np.all(y >= 0) and np.all(y <= x) and np.any(y > 0)


def test_paper_model_shape_and_size():
    net = model_lib.build_unet(64, "paper")
    assert net.input.shape[1:] == (512, 128, 1) and net.output.shape[1:] == (512, 128, 1)
    assert 30_000_000 < net.count_params() < 32_000_000
    assert model_lib.build_unet(16, "jansson").count_params() > 9_000_000


def test_output_stays_float32_under_mixed_precision():
    import keras
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = model_lib.build_unet(4, "paper")
        assert net.layers[-1].dtype_policy.compute_dtype == "float32"
        assert net.get_layer("enc1_conv1").dtype_policy.compute_dtype == "bfloat16"
        assert net(np.zeros((1, 512, 128, 1), np.float32)).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _write_legacy_hdf5(net, path):
    """The released code's Keras 2 layout: layer groups, weight_names, a Conv1D output kernel."""
    import h5py
    from keras import layers
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        names = []
        counters = {}
        for layer in net.layers:
            weights = layer.get_weights()
            kind = {layers.Conv2DTranspose: "conv2d_transpose", layers.BatchNormalization: "batch_normalization",
                    layers.Conv2D: "conv2d"}.get(type(layer), "other")
            if layer.name == "output_conv":
                kind, weights = "conv1d", [weights[0].reshape(1, weights[0].shape[2], 1), weights[1]]
            counters[kind] = counters.get(kind, 0) + 1
            name = f"{kind}_{counters[kind]}"
            names.append(name.encode())
            lg = g.create_group(name)
            wnames = [f"{name}/w{i}:0".encode() for i in range(len(weights))]
            lg.attrs["weight_names"] = wnames
            for wname, value in zip(wnames, weights):
                lg.create_dataset(wname.decode(), data=value)
        g.attrs["layer_names"] = names


def test_load_released_legacy_weights(tmp_path, rng):
    source = model_lib.build_unet(4, "paper")
    for w in source.weights:          # make every weight distinctive
        w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.1)
    _write_legacy_hdf5(source, tmp_path / "released.hdf5")
    loaded = model_lib.load_released_weights(tmp_path / "released.hdf5", model_lib.build_unet(4, "paper"))
    x = rng.random((1, 512, 128, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), source(x).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="layers in the file"):
        model_lib.load_released_weights(tmp_path / "released.hdf5", model_lib.build_unet(4, "jansson"))


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tiny_cache, tmp_path):
    script = f"""
import sys, json
sys.path.insert(0, {str(ROOT)!r})
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import train
train.main(["--data", {str(tiny_cache)!r}, "--run-dir", {str(tmp_path / 'run')!r}, "--distribute", "mirrored",
            "--epochs", "2", *{TINY!r}])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hardware"]["replicas"] == 2 and config["status"] == "complete"
    assert np.isfinite(config["results"]["best_val_loss"])


def test_cosine_schedule_decays_the_learning_rate_and_clipnorm_reaches_adam(tiny_cache, tmp_path):
    import keras
    config = _train(tiny_cache, tmp_path / "run", "--epochs", "2", "--lr-schedule", "cosine", "--clipnorm", "0.5")
    assert config["status"] == "complete" and config["args"]["clipnorm"] == 0.5
    optimizer = keras.models.load_model(tmp_path / "run" / "resume.keras").optimizer
    lr_now = float(optimizer.learning_rate)        # the schedule at the optimizer's step count
    assert int(optimizer.iterations) == 6 and lr_now == pytest.approx(3e-3 * 0.01, rel=1e-3)
    assert optimizer.global_clipnorm == 0.5
    with pytest.raises(SystemExit):
        train.main(["--lr-schedule", "cosine", "--reduce-lr-on-plateau", "--data", str(tiny_cache)])


def test_a_bfloat16_run_loads_and_exports_as_float32(tiny_cache, tmp_path):
    import keras
    _train(tiny_cache, tmp_path / "run", "--epochs", "1", "--precision", "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"       # restored after training
    keras.mixed_precision.set_global_policy("mixed_bfloat16")              # even if a caller left it set
    try:
        net, config = runs.load_run(tmp_path / "run")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert config["hardware"]["precision"] == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in net.layers} == {"float32"}


def test_default_length_is_the_papers_epochs_or_enough_steps_to_leave_the_plateau(tiny_cache, tmp_path, monkeypatch):
    assert train.default_epochs(2900 // 20) == train.PAPER_EPOCHS          # full MUSDB18 at batch 64: 20 epochs
    assert train.default_epochs(38) == 64                                   # the previews at batch 16: 2,432 steps
    monkeypatch.setattr(train, "PAPER_EPOCHS", 1)
    monkeypatch.setattr(train, "PLATEAU_STEPS", 5)                          # 3 steps per epoch -> 2 epochs
    config = _train(tiny_cache, tmp_path / "run")
    assert config["args"]["epochs"] == 2 and config["results"]["completed_epochs"] == 2
    assert config["epochs_rule"].startswith("default") and len(_history(tmp_path / "run")) == 2
    config = _train(tiny_cache, tmp_path / "given", "--epochs", "1")
    assert config["args"]["epochs"] == 1 and config["epochs_rule"] == "as given"


def test_time_limit_stops_after_the_epoch_that_reaches_it(tiny_cache, tmp_path, capsys):
    config = _train(tiny_cache, tmp_path / "run", "--epochs", "5", "--time-limit", "0.0001")
    assert config["status"] == "complete" and config["results"]["completed_epochs"] == 1
    assert config["results"]["stopped_by"] == "--time-limit 0.0001" and len(_history(tmp_path / "run")) == 1
    assert "--time-limit: stopping after epoch 1" in capsys.readouterr().out


def test_vocal_gain_trains_and_is_recorded(tiny_cache, tmp_path):
    config = _train(tiny_cache, tmp_path / "run", "--epochs", "1", "--vocal-gain-db", "6", "--target", "direct2",
                    "--loss", "sdrmask", "--norm", "time", "--scaler", "robust")
    assert config["status"] == "complete" and config["args"]["vocal_gain_db"] == 6.0
    assert np.isfinite(config["results"]["best_val_loss"])
    for bad in (["--vocal-gain-db", "-3"], ["--vocal-gain-db", "3", "--online-remix", str(tmp_path)]):
        with pytest.raises(SystemExit, match="--vocal-gain-db"):
            train.main(["--data", str(tiny_cache), "--run-dir", str(tmp_path / "bad"), *bad])


@pytest.mark.slow
def test_paper_command_shows_step_progress_eta_and_estimate(tiny_cache, tmp_path, capsys):
    """The user's command (paper model, 64 filters) on a CPU: per-step bar with examples/s and ETAs,
    one estimate line after the first steps, one CPU-size warning; the configuration is not changed."""
    run_dir = tmp_path / "paper"
    train.main(["--norm", "frequency", "--scaler", "minmax", "--loss", "mae", "--epochs", "1", "--steps-per-epoch",
                "3", "--data", str(tiny_cache), "--run-dir", str(run_dir), "--batch-size", "2", "--verbose", "1"])
    err = capsys.readouterr().err
    assert "examples/s" in err and "run ETA" in err and "epoch 1/1" in err and "3/3" in err
    estimates = [line for line in err.splitlines() if line.startswith("train: estimated time for epochs 1..1")]
    assert len(estimates) == 1, err
    warnings = [line for line in err.splitlines() if "paper-size model" in line]
    assert len(warnings) == 1 and "--base-filters 8" in warnings[0]
    assert "--norm frequency --scaler minmax --loss mae" in warnings[0]
    plateau = [line for line in err.splitlines() if "sits on a plateau" in line]
    assert len(plateau) == 1 and "this run has 3:" in plateau[0] and "--epochs 800" in plateau[0], err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["base_filters"] == 64 and config["status"] == "complete"     # not changed by itself


def test_precision_auto_uses_bfloat16_only_with_hardware_support(monkeypatch):
    import argparse

    import hardware
    args = argparse.Namespace(precision="auto", jit="auto", eager=False)
    for flags, expected in ((["avx2", "fma"], "float32"), (["avx2", "avx512f", "amx_bf16"], "mixed_bfloat16"),
                            (["avx512f", "avx512_bf16"], "mixed_bfloat16")):
        monkeypatch.setattr(hardware, "cpu_info", lambda flags=flags: {"model": "x", "cores": 2, "flags": flags})
        assert train.resolve_hardware(args) == (expected, False), flags


def test_onednn_is_switched_on_before_tensorflow_unless_the_user_chose():
    probe = ("import os, sys, train\n"
             "try:\n    train.main(['--data', '/nonexistent', '--verbose', '0'])\nexcept SystemExit:\n    pass\n"
             "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.stdout.strip() == "1", out
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         env={**env, "TF_ENABLE_ONEDNN_OPTS": "0"})
    assert out.stdout.strip() == "0", out


def test_freeze_batchnorm_keeps_the_parents_statistics_and_trains_the_rest(tiny_run, tiny_cache, tmp_path):
    common = ["--data", str(tiny_cache), "--base-filters", "2", "--batch-size", "4", "--epochs", "1",
              "--steps-per-epoch", "3", "--lr", "0.01", "--init-from", str(tiny_run), "--verbose", "0", "--eager"]
    parent = model_weights(tiny_run / "best.weights.h5")
    for frozen in (True, False):
        run_dir = tmp_path / f"frozen-{frozen}"
        train.main([*common, "--run-dir", str(run_dir), *(["--freeze-batchnorm"] if frozen else [])])
        child = model_weights(run_dir / "last.weights.h5")
        assert child.keys() == parent.keys()
        bn = [k for k in parent if k.startswith("batch_normalization")]
        other = [k for k in parent if k not in bn]
        assert bn and other
        assert all(np.array_equal(child[k], parent[k]) for k in bn) == frozen     # moving stats, scale, offset
        assert any(not np.array_equal(child[k], parent[k]) for k in other)     # the convolutions learn
        assert runs.read_config(run_dir)["args"]["freeze_batchnorm"] is frozen
        runs.load_run(run_dir)                  # its weights load into the plain (unfrozen) model


def test_source_weight_is_recorded_and_an_unknown_source_is_one_clear_error(tiny_cache, tmp_path):
    import train
    run_dir = tmp_path / "weighted"
    train.main(["--data", str(tiny_cache), "--run-dir", str(run_dir), "--base-filters", "2", "--batch-size", "4",
                "--epochs", "1", "--steps-per-epoch", "1", "--verbose", "0", "--eager", "--source-weight", "musdb=2"])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["source_weight"] == [["musdb", 2]]
    with pytest.raises(SystemExit, match="caches hold the sources"):
        train.main(["--data", str(tiny_cache), "--run-dir", str(tmp_path / "bad"), "--base-filters", "2",
                    "--epochs", "1", "--steps-per-epoch", "1", "--verbose", "0", "--source-weight", "mir1k=2"])
    assert not (tmp_path / "bad" / "best.weights.h5").exists()


def _randomized(net, rng):
    """`net` with random weights and BN statistics far from the initial ones (a trained-looking model)."""
    for layer in net.layers:
        weights = layer.get_weights()
        if weights:
            # BN's last weight is its moving variance: keep it positive
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if i == 3 else
                               (0.3 * rng.standard_normal(w.shape)).astype(np.float32) for i, w in enumerate(weights)])
    return net


@pytest.mark.parametrize("arch,target", [("paper", "direct2"), ("jansson", "masked2"), ("paper", "direct")])
def test_widening_preserves_the_function(arch, target, rng):
    from export import check_windows
    old = _randomized(model_lib.build_unet(2, arch, target), rng)
    wide = model_lib.build_unet(6, arch, target)
    assert model_lib.widen_from(old, wide, noise=0.0) == sum(1 for layer in old.layers if layer.get_weights())
    x = check_windows(2, seed=1)
    expected = np.asarray(old(x, training=False))
    np.testing.assert_allclose(np.asarray(wide(x, training=False)), expected, atol=1e-4 * np.abs(expected).max())
    # with noise the copies differ (they would otherwise train as one), and the function stays close
    noisy = model_lib.build_unet(6, arch, target)
    model_lib.widen_from(old, noisy, noise=0.01, seed=0)
    kernel = noisy.get_layer(noisy.layers[1].name).get_weights()[0]
    assert not np.allclose(kernel[..., 0], kernel[..., 2])
    assert np.abs(np.asarray(noisy(x, training=False)) - expected).max() < 0.2 * np.abs(expected).max()


def test_init_from_a_narrower_run_grows_it(tiny_run):
    import runs
    import train
    from export import check_windows
    old, config = runs.load_run(tiny_run)
    args = config["args"]
    net = model_lib.build_unet(2 * args["base_filters"], args["arch"], args["target"])
    record = train.init_from(net, tiny_run)
    assert record["widened_from_base"] == args["base_filters"] and record["copied"] > 0
    x = check_windows(2, seed=0)
    expected = np.asarray(old(x, training=False))
    assert np.abs(np.asarray(net(x, training=False)) - expected).max() < 0.1 * np.abs(expected).max() + 1e-6


def test_dropout_trains_is_recorded_and_loads_into_the_plain_network(tiny_cache, tmp_path, rng):
    """--dropout adds weightless layers that are active only in training: the run's weights load into
    the network built without them (runs.load_run, separation, export) and predict the same there."""
    net = model_lib.build_unet(4, "paper", "direct2", dropout=0.5)
    assert [layer.name for layer in net.layers if "dropout" in layer.name] == ["dec4_dropout", "dec3_dropout",
                                                                              "dec2_dropout"]
    windows = rng.random((2, *model_lib.INPUT_SHAPE)).astype("float32")
    # batch norm uses the batch's statistics in training, so two training calls differ only by dropout
    assert not np.allclose(net(windows, training=True), net(windows, training=True))
    inference = net(windows, training=False)
    np.testing.assert_array_equal(net(windows, training=False), inference)    # dropout off at inference
    path = tmp_path / "dropout.weights.h5"
    net.save_weights(path)
    plain = model_lib.build_unet(4, "paper", "direct2")
    plain.load_weights(path)
    np.testing.assert_allclose(plain(windows, training=False), inference, atol=1e-6)
    with pytest.raises(ValueError, match="dropout"):
        model_lib.build_unet(4, "jansson", "direct2", dropout=0.5)
    for bad in (["--dropout", "1"], ["--dropout", "0.5", "--arch", "jansson"]):
        with pytest.raises(SystemExit, match="--dropout"):
            train.main(["--data", str(tiny_cache), "--run-dir", str(tmp_path / "bad"), *bad])
    config = _train(tiny_cache, tmp_path / "run", "--epochs", "1", "--dropout", "0.3", "--target", "direct2")
    assert config["status"] == "complete" and config["args"]["dropout"] == 0.3
    runs.load_run(tmp_path / "run")


def test_eager_steps_match_the_traced_graph(tiny_cache, tmp_path, capsys):
    """--eager runs the same training steps without tracing them: the same losses and weights after two
    steps up to rounding (float32; Adam's first steps, about lr x the gradient's sign, magnify the
    rounding of near-zero gradients, e.g. of a bias before batch normalization: the weights differ by
    under 1 % in all), and the choice is recorded."""
    weights, history = {}, {}
    for eager in (False, True):
        run_dir = train_tiny(tiny_cache, tmp_path / f"eager-{eager}", "--precision", "float32",
                             "--steps-per-epoch", "2", eager=eager)
        assert runs.read_config(run_dir)["hardware"]["eager"] is eager
        weights[eager] = model_weights(run_dir / "last.weights.h5")
        history[eager] = [float(row[key]) for row in _history(run_dir) for key in ("loss", "val_loss")]
    np.testing.assert_allclose(history[True], history[False], rtol=1e-4)
    assert weights[True].keys() == weights[False].keys()
    graph, eager = (np.concatenate([w[name].ravel() for name in sorted(w)]) for w in (weights[False], weights[True]))
    assert np.abs(eager - graph).sum() <= 0.01 * np.abs(graph).sum()
    with pytest.raises(SystemExit):
        train.main(["--data", str(tiny_cache), "--eager", "--jit", "on"])
    assert "--eager runs no graph" in capsys.readouterr().err
