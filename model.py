"""U-Net architectures for vocal magnitude estimation, and a loader for the paper's released weights.

    arch="paper"    the released code's U-Net: 5 levels of [Conv 3x3 -> BN -> ReLU] x 2 with
                    64..1024 filters, 2x2 max-pooling, Conv2DTranspose 2x2 up-sampling with skip
                    concatenation, 1x1 output convolution (about 31 M parameters at base 64)
    arch="jansson"  Jansson et al. 2017 (report 003, Spleeter's U-Net): 6 x [Conv 5x5 stride 2 ->
                    BN -> LeakyReLU 0.2] with 16..512 filters, 6 x [Conv2DTranspose 5x5 stride 2
                    -> BN -> ReLU], dropout 0.5 on the first three, skip concatenations

    target          "direct", "mask", "masked", or for two sources "masked2" / "direct2": the
                    output stage, defined in targets.py

`base_filters` scales every level (64 = paper for arch="paper", 16 = Jansson; 8 or 16 for a CPU).
The output layer is float32 under mixed precision. Trained runs are loaded by runs.load_run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import audio
import targets

ARCHS = ("paper", "jansson")
TARGETS = targets.TARGETS
INPUT_SHAPE = audio.WINDOW_SHAPE
PAPER_DEPTH = 5          # encoder levels; max-pooling after the first four
JANSSON_DEPTH = 6


def _conv_block(x, filters: int, name: str):
    from keras import layers
    for k in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{k}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{k}")(x)
    return x


def _paper_unet(inputs, base: int, outputs: int = 1, dropout: float = 0.0):
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
        if dropout and level > 0:        # all but the full-resolution block: the three deepest, as Jansson's
            x = layers.Dropout(dropout, name=f"dec{level + 1}_dropout")(x)
    return layers.Conv2D(outputs, 1, name="output_conv")(x)


def _jansson_unet(inputs, base: int, outputs: int = 1):
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
    return layers.Conv2DTranspose(outputs, 5, strides=2, padding="same", name="output_conv")(x)


def frame_multiple(arch: str) -> int:
    """Window lengths an architecture takes: multiples of 2 ** its downsampling steps."""
    return 2 ** (PAPER_DEPTH - 1 if arch == "paper" else JANSSON_DEPTH)


def build_unet(base_filters: int = 64, arch: str = "paper", target: str = "direct",
               frames: int | None = audio.WINDOW_FRAMES, dropout: float = 0.0):
    """Build an uncompiled U-Net for (N_BINS, WINDOW_FRAMES, 1) windows.

    Args:
        base_filters: filters of the first level; every level scales with it.
        arch: "paper" or "jansson".
        target: "direct" (linear output), "mask" (sigmoid output), "masked" (sigmoid x input) or
            "masked2" (two sigmoid masks x input: vocals and accompaniment channels) or "direct2"
            (two linear channels).
        frames: window length; None = any multiple of frame_multiple(arch), with the same weights
            (bench/postfilter.py --shifts 0 runs a song as one window).
        dropout: arch="paper" only: dropout rate after its three deepest decoder blocks (0 = none, the
            paper's network). Dropout has no weights and is off at inference, so a run trained with it
            loads into the network built without it.
    """
    import keras
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")
    if dropout and arch != "paper":
        raise ValueError(f"dropout is an option of the paper U-Net; arch {arch!r} has its own (Jansson's 0.5)")
    targets.check(target)
    inputs = keras.Input((INPUT_SHAPE[0], frames, *INPUT_SHAPE[2:]), name="mix_mag")
    n_sources = len(targets.sources(target))
    features = _paper_unet(inputs, base_filters, n_sources, dropout) if arch == "paper" else \
        _jansson_unet(inputs, base_filters, n_sources)
    outputs = targets.output_layer(features, inputs, target)
    return keras.Model(inputs, outputs, name=f"unet_{arch}_{base_filters}_{target}")


def build_ensemble(members: list[tuple[int, str]], target: str, frames: int | None = audio.WINDOW_FRAMES):
    """One model whose output is the mean of several U-Nets' outputs on the same input.

    The members share the target (and, in their runs, the scaler), so the mean of their outputs is
    the mean of their source magnitudes: one graph that separation and export.py treat like any model.

    Args:
        members: (base_filters, arch) of each member.
        target: the members' output stage (targets.py).
        frames: window length, as for build_unet.
    """
    import keras
    from keras import layers
    inputs = keras.Input((INPUT_SHAPE[0], frames, *INPUT_SHAPE[2:]), name="mix_mag")
    outputs = []
    for i, (base_filters, arch) in enumerate(members):
        net = build_unet(base_filters, arch, target, frames)
        member = keras.Model(net.inputs, net.outputs[0], name=ensemble_member_name(i, net))
        outputs.append(member(inputs))
    mean = layers.Average(dtype="float32", name="ensemble_mean")(outputs)
    return keras.Model(inputs, mean, name=f"ensemble{len(members)}_{target}")


def ensemble_member_name(i: int, net) -> str:
    """The name of build_ensemble's i-th member (a U-Net like `net`) inside the ensemble."""
    return f"member{i}_{net.name}"


def unet_spec(net) -> tuple[str, int, str]:
    """(arch, base_filters, target) of a build_unet model, from the name it gives its models."""
    _, arch, base, target = net.name.split("_", 3)
    return arch, int(base), target


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
    for kind, model_layers in ours.items():
        if len(model_layers) != len(by_type[kind]):
            raise ValueError(f"{path}: {len(by_type[kind])} {kind} layers in the file, {len(model_layers)} in the "
                             f"model; is it the paper's U-Net with base {model_layers[0].filters if kind == 'conv' else '?'}?")
        for layer, values in zip(model_layers, by_type[kind]):
            layer.set_weights(values)
    return model


def freeze_batchnorm(model) -> int:
    """Put every BatchNormalization layer in inference mode for training: its moving statistics and
    its scale and offset stay as they are (Keras runs a non-trainable BatchNormalization with its
    moving statistics). For fine-tuning a trained model on small batches: the statistics learnt over
    the whole first training do not drift with each batch. Returns how many layers were frozen."""
    from keras import layers
    frozen = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    for layer in frozen:
        layer.trainable = False
    return len(frozen)


def _producer(tensor):
    """The layer that made a Keras tensor of a functional model (Keras 3 keeps it only in this
    attribute; its public graph API lists layers, not which tensor feeds which)."""
    return tensor._keras_history.operation


def widen_from(old, new, noise: float = 0.01, seed: int = 0) -> int:
    """Net2WiderNet (Chen et al. 2016): fill the wider `new` model from the trained `old` one so
    that it computes the same function, then break the symmetry with a little noise.

    Both models must come from build_unet with one arch and target, `new` with an integer multiple
    of `old`'s base_filters. Wider channel j copies old channel j mod C (piecewise through the skip
    concatenations); a layer reading r copies of a channel divides their incoming weights by r, so
    every copy's sum is the old value. BatchNormalization copies its statistics per channel.

    Args:
        old, new: the trained and the wider model (same layer names).
        noise: relative std of the Gaussian noise multiplied into every widened kernel (0 = exact).
        seed: the noise's seed.
    Returns:
        how many layers were filled.
    """
    from keras import layers
    rng = np.random.default_rng(seed)
    old_layers = {layer.name: layer for layer in old.layers}
    channel_map: dict[str, np.ndarray] = {}        # layer name -> old channel of each output channel

    def input_map(layer) -> np.ndarray:
        # a layer of several inputs that is not a concatenation (the masked output's Multiply)
        # keeps the channels of its first
        tensor = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
        source = _producer(tensor)
        if isinstance(source, layers.InputLayer) or source.name not in channel_map:
            return np.arange(tensor.shape[-1])
        return channel_map[source.name]

    filled = 0
    for layer in new.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        if isinstance(layer, layers.Concatenate):
            parts, offset = [], 0
            for tensor in layer.input:
                part = channel_map.get(_producer(tensor).name, np.arange(tensor.shape[-1]))
                old_width = old_layers[_producer(tensor).name].output.shape[-1]
                parts.append(part + offset)
                offset += old_width
            channel_map[layer.name] = np.concatenate(parts)
            continue
        weights = layer.get_weights()
        if not weights:                    # activations, pooling, dropout: channels pass through
            channel_map[layer.name] = input_map(layer)
            continue
        old_weights = old_layers[layer.name].get_weights()
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            transpose = isinstance(layer, layers.Conv2DTranspose)
            in_map = input_map(layer)
            out_old = old_weights[0].shape[-2 if transpose else -1]
            out_map = np.arange(layer.filters) % out_old
            copies = np.bincount(in_map, minlength=in_map.max() + 1)[in_map].astype(np.float32)
            kernel = old_weights[0]
            if transpose:                  # Keras' Conv2DTranspose kernel is (h, w, out, in)
                kernel = kernel[:, :, out_map][:, :, :, in_map] / copies
            else:
                kernel = kernel[:, :, in_map][:, :, :, out_map] / copies[:, None]
            if noise:
                kernel = kernel * (1 + noise * rng.standard_normal(kernel.shape)).astype(np.float32)
            layer.set_weights([kernel.astype(np.float32)] + [w[out_map] for w in old_weights[1:]])
            channel_map[layer.name] = out_map
        elif isinstance(layer, layers.BatchNormalization):
            out_map = input_map(layer)
            layer.set_weights([w[out_map] for w in old_weights])
            channel_map[layer.name] = out_map
        else:
            raise ValueError(f"widen_from: no rule for layer {layer.name} ({type(layer).__name__})")
        filled += 1
    return filled
