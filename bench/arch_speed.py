"""The model's time per window in onnxruntime, per architecture and size: what separate.py's model stage
costs before anything is trained (issue 11: the model is half of a song's time, bench/stages.py).

    python bench/arch_speed.py                                        # paper 4/8/16, Jansson 8/16, random weights
    python bench/arch_speed.py --archs paper:8 jansson:8 --runs pretrained results/runs-select/RUN

Each `ARCH:BASE` U-Net is built with random weights and the two-source output of the shipped model,
exported with tf2onnx (the network alone: no scaler) and run through separation.ExportedWindowModel,
the session separate.py uses (all cores, no spinning threads). `--runs` times the exported whole
inference graphs (scaler + network + inverse) of trained runs (RUN/model.onnx, `python export.py RUN`).
Each model gets an untimed warm-up, then the median of `--repeats` rounds of `--calls` calls on a batch
of `--batch` windows (a 7-second song is three windows). Prints one line per model and the machine.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import print_machine

DEFAULT_ARCHS = ("paper:4", "paper:8", "paper:16", "jansson:8", "jansson:16")


def parse_arch(text: str) -> tuple[str, int]:
    """"jansson:8" -> ("jansson", 8)."""
    import model
    arch, _, base = text.partition(":")
    if arch not in model.ARCHS or not base.isdigit() or int(base) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ARCH:BASE with ARCH one of {model.ARCHS}, e.g. jansson:8")
    return arch, int(base)


def export_random_unet(arch: str, base: int, target: str, path: Path) -> int:
    """A random-weight U-Net's network alone as ONNX at path; returns its parameter count."""
    import tensorflow as tf
    import tf2onnx
    import model
    import separation
    from audio import N_BINS, WINDOW_FRAMES
    net = model.build_unet(base, arch, target)
    spec = tf.TensorSpec((None, N_BINS, WINDOW_FRAMES, 1), tf.float32, name="mix_mag")
    tf2onnx.convert.from_keras(net, input_signature=[spec], opset=separation.ONNX_OPSET, output_path=str(path))
    return net.count_params()


def time_window_model(onnx_path: Path, batch: int, calls: int, repeats: int) -> float:
    """Median milliseconds per window of an ONNX window model over `repeats` rounds."""
    import numpy as np
    from audio import N_BINS, WINDOW_FRAMES
    from separation import ExportedWindowModel
    window_model = ExportedWindowModel(onnx_path, "onnx", batch_size=batch)
    mix = np.abs(np.random.default_rng(0).standard_normal((batch, N_BINS, WINDOW_FRAMES, 1))).astype(np.float32)
    window_model.forward(mix)
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            window_model.forward(mix)
        rounds.append((time.perf_counter() - started) / (calls * batch) * 1000)
    return statistics.median(rounds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="*", type=parse_arch, default=[parse_arch(a) for a in DEFAULT_ARCHS],
                   metavar="ARCH:BASE", help="random-weight U-Nets to time (default: %(default)s)")
    p.add_argument("--target", default="direct2", help="output mode of the random U-Nets (targets.py)")
    p.add_argument("--runs", nargs="*", type=Path, default=[], help="trained runs whose RUN/model.onnx to time")
    p.add_argument("--batch", type=int, default=3, help="windows per call")
    p.add_argument("--calls", type=int, default=10, help="calls per timed round")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is printed")
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    missing = [str(r) for r in args.runs if not (r / "model.onnx").exists()]
    if missing:
        raise SystemExit(f"arch_speed: no model.onnx in {', '.join(missing)}: python export.py RUN first")
    print_machine()
    rows = []                       # (label, ms per window)
    with tempfile.TemporaryDirectory() as tmp:
        for arch, base in args.archs:
            path = Path(tmp) / f"{arch}{base}.onnx"
            params = export_random_unet(arch, base, args.target, path)
            rows.append((f"{arch}:{base}", time_window_model(path, args.batch, args.calls, args.repeats)))
            print(f"arch_speed: {arch}:{base} (network only, random weights): {params / 1e6:.2f} M parameters, "
                  f"{rows[-1][1]:.1f} ms per window", flush=True)
    import runs
    for run in args.runs:
        config = runs.read_config(run)
        members = config.get("ensemble", {}).get("members", [config["args"]])
        nets = " + ".join(f"{m.get('arch', 'paper')}:{m['base_filters']}" for m in members)
        rows.append((str(run), time_window_model(run / "model.onnx", args.batch, args.calls, args.repeats)))
        print(f"arch_speed: {run} (whole exported graph, {nets}): {rows[-1][1]:.1f} ms per window", flush=True)
    fastest = min(ms for _, ms in rows)
    print("arch_speed: " + "; ".join(f"{label} {ms:.1f} ms ({ms / fastest:.1f}x)" for label, ms in rows)
          + f"; batches of {args.batch}, median of {args.repeats} x {args.calls} calls")


if __name__ == "__main__":
    main()
