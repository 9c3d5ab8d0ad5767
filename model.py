"""U-Nets for vocal magnitude estimation, and loaders for trained runs and the paper's weights.

    arch="paper"    the released code's U-Net: 5 levels of [Conv 3x3 -> BN -> ReLU] x 2 with
                    64..1024 filters, 2x2 max-pooling, Conv2DTranspose 2x2 up-sampling with skip
                    concatenation, 1x1 output convolution (about 31 M parameters at base 64)
    arch="jansson"  Jansson et al. 2017 (report 003, Spleeter's U-Net): 6 x [Conv 5x5 stride 2 ->
                    BN -> LeakyReLU 0.2] with 16..512 filters, 6 x [Conv2DTranspose 5x5 stride 2
                    -> BN -> ReLU], dropout 0.5 on the first three, skip concatenations

    target="direct" linear output = the normalized vocal magnitude (the paper)
    target="mask"   sigmoid output = a soft mask vocal / max(vocal, mixture) (report 002) that
                    multiplies the un-normalized mixture magnitude; the loss is on the mask
    target="masked" Jansson et al.: a sigmoid mask times the normalized mixture, so the loss is on
                    the normalized vocal magnitude as for "direct" (loud bins count more than
                    silent ones, as they do for SDR) while the estimate stays between 0 and the
                    mixture

`base_filters` scales every level (64 = paper for arch="paper", 16 = Jansson; 8 or 16 for a CPU).
The output layer is float32 under mixed precision.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import audio

ARCHS = ("paper", "jansson")
TARGETS = ("direct", "mask", "masked")
INPUT_SHAPE = (audio.N_BINS, audio.WINDOW_FRAMES, 1)
PAPER_DEPTH = 5          # encoder levels; max-pooling after the first four
JANSSON_DEPTH = 6


def _conv_block(x, filters: int, name: str):
    from keras import layers
    for k in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{k}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{k}")(x)
    return x


def _paper_unet(inputs, base: int):
    from keras import layers
    x, skips = inputs, []
    for level in range(PAPER_DEPTH):
        x = _conv_block(x, base * 2 ** level, f"enc{level + 1}")
        if level < PAPER_DEPTH - 1:
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
    for level in reversed(range(PAPER_DEPTH - 1)):
        filters = base * 2 ** level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level + 1}")(x)
        x = layers.Concatenate(name=f"skip{level + 1}")([x, skips[level]])
        x = _conv_block(x, filters, f"dec{level + 1}")
    return layers.Conv2D(1, 1, name="output_conv")(x)


def _jansson_unet(inputs, base: int):
    from keras import layers
    x, skips = inputs, []
    for level in range(JANSSON_DEPTH):
        x = layers.Conv2D(base * 2 ** level, 5, strides=2, padding="same", name=f"enc{level + 1}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{level + 1}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"enc{level + 1}_lrelu")(x)
        skips.append(x)
    for i, level in enumerate(reversed(range(JANSSON_DEPTH - 1))):
        x = layers.Conv2DTranspose(base * 2 ** level, 5, strides=2, padding="same", name=f"dec{level + 1}_deconv")(x)
        x = layers.BatchNormalization(name=f"dec{level + 1}_bn")(x)
        x = layers.Activation("relu", name=f"dec{level + 1}_relu")(x)
        if i < 3:
            x = layers.Dropout(0.5, name=f"dec{level + 1}_dropout")(x)
        x = layers.Concatenate(name=f"skip{level + 1}")([x, skips[level]])
    return layers.Conv2DTranspose(1, 5, strides=2, padding="same", name="output_conv")(x)


def build_unet(base_filters: int = 64, arch: str = "paper", target: str = "direct"):
    """Build an uncompiled U-Net for (N_BINS, WINDOW_FRAMES, 1) windows.

    Args:
        base_filters: filters of the first level; every level scales with it.
        arch: "paper" or "jansson".
        target: "direct" (linear output), "mask" (sigmoid output) or "masked" (sigmoid x input).
    """
    import keras
    from keras import layers
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")
    inputs = keras.Input(INPUT_SHAPE, name="mix_mag")
    x = (_paper_unet if arch == "paper" else _jansson_unet)(inputs, base_filters)
    # float32 output keeps the loss numerically safe under mixed precision
    if target == "masked":
        mask = layers.Activation("sigmoid", dtype="float32", name="mask")(x)
        outputs = layers.Multiply(dtype="float32", name="output")([mask, inputs])
    else:
        outputs = layers.Activation("sigmoid" if target == "mask" else "linear", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=f"unet_{arch}_{base_filters}_{target}")


MODEL_KEYS = ("base_filters", "arch", "target")


def is_complete_run(run_dir: str | Path) -> bool:
    """True for a run folder whose training finished (config.json says so and best weights exist)."""
    run_dir = Path(run_dir)
    config = run_dir / "config.json"
    return config.exists() and (run_dir / "best.weights.h5").exists() and \
        json.loads(config.read_text()).get("status") == "complete"


def complete_runs(runs_root: str | Path) -> list[Path]:
    """The complete runs under a folder, sorted by name."""
    return sorted(d for d in Path(runs_root).glob("*") if is_complete_run(d))


def load_run(run_dir: str | Path, weights: str = "best"):
    """Rebuild a trained model from its run directory.

    Args:
        run_dir: a folder written by train.py (config.json + *.weights.h5).
        weights: "best" or "last".
    Returns:
        (model, config) where config is the run's config.json as a dict.
    """
    run_dir = Path(run_dir)
    config_path, weights_path = run_dir / "config.json", run_dir / f"{weights}.weights.h5"
    if not config_path.exists():
        raise FileNotFoundError(f"{run_dir}: no config.json; is this a run directory written by train.py?")
    if not weights_path.exists():
        raise FileNotFoundError(f"{run_dir}: no {weights_path.name}; train it (python train.py ...) or "
                                f"finish it with --resume")
    config = json.loads(config_path.read_text())
    model = build_unet(**{k: config["args"][k] for k in MODEL_KEYS})
    model.load_weights(weights_path)
    return model, config


def load_released_weights(path: str | Path, model=None):
    """Load the paper's released weights (legacy Keras 2 .hdf5) into the paper architecture.

    The released model ends in a Conv1D applied to the 4-D tensor, whose kernel is (1, 64, 1);
    it is reshaped to our equivalent 1x1 Conv2D kernel (1, 1, 64, 1). Layers are matched by
    type in build order (their names differ between Keras versions).

    Args:
        path: the .hdf5 file (a full model save or save_weights output).
        model: a paper-architecture model to fill; built with base 64 when None.
    """
    import h5py
    from keras import layers
    model = model or build_unet(64, "paper", "direct")
    by_type = {"conv": [], "bn": [], "up": [], "out": []}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for layer_name in [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]:
            g = group[layer_name]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
            if not names:
                continue
            values = [np.asarray(g[n]) for n in names]
            kernel = values[0]
            if "batch_normalization" in layer_name or len(values) == 4:
                by_type["bn"].append(values)
            elif kernel.ndim == 3:                             # the Conv1D output layer
                by_type["out"].append([kernel.reshape(1, 1, *kernel.shape[1:])] + values[1:])
            elif "transpose" in layer_name:
                by_type["up"].append(values)
            else:
                by_type["conv"].append(values)
    ours = {"conv": [], "bn": [], "up": [], "out": []}
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            ours["up"].append(layer)
        elif isinstance(layer, layers.Conv2D):
            ours["out" if layer.name == "output_conv" else "conv"].append(layer)
        elif isinstance(layer, layers.BatchNormalization):
            ours["bn"].append(layer)
    for kind, targets in ours.items():
        if len(targets) != len(by_type[kind]):
            raise ValueError(f"{path}: {len(by_type[kind])} {kind} layers in the file, {len(targets)} in the "
                             f"model; is it the paper's U-Net with base {targets[0].filters if kind == 'conv' else '?'}?")
        for layer, values in zip(targets, by_type[kind]):
            layer.set_weights(values)
    return model
