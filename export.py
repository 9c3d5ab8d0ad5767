"""Export a run's whole inference graph for separation without TensorFlow.

    python export.py pretrained                              # ONNX -> pretrained/model.onnx
    python export.py results/runs/time-robust-mse --format tflite
    python export.py pretrained --format savedmodel --out /tmp/vocals_savedmodel

The exported graph is what separation runs per batch of model windows: the run's per-window
scaler (statistics of each mixture window), the U-Net, the inverse (targets.py), clipped at 0:
mixture magnitude windows (batch, 512, 128, 1) in, vocal magnitude windows out, batch size open.
Converters are the ecosystems' own: tf2onnx (ONNX, run by onnxruntime), the TensorFlow Lite converter
(run by LiteRT) and Keras' ExportArchive (SavedModel, what `model.export` writes). Each export is
checked against the Keras model on real-looking windows before it is kept, and RUN/export.json
records which weights it was made from (separate.py uses an export only while they match).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import hardware
import scratch

FORMATS = ("onnx", "tflite", "savedmodel")
DEFAULT_NAMES = {"onnx": "model.onnx", "tflite": "model.tflite", "savedmodel": "savedmodel"}
TOLERANCE = 1e-4        # max abs difference to the Keras model, relative to the largest vocal magnitude


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Export a run's inference graph (scaler + U-Net + inverse) to "
                                            "ONNX, TFLite or SavedModel.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", type=Path, help="run directory (e.g. pretrained or results/runs/NAME)")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="what to write")
    p.add_argument("--out", type=Path, default=None,
                   help="output path (default: RUN/model.onnx, RUN/model.tflite or RUN/savedmodel)")
    return p


def check_windows(n: int = 4, seed: int = 0):
    """Mixture-like magnitude windows for checking an export: a spectral slope, harmonics, silence."""
    import numpy as np

    import audio
    rng = np.random.default_rng(seed)
    bins = np.arange(audio.N_BINS)[:, None]
    frames = np.arange(audio.WINDOW_FRAMES)[None, :]
    windows = []
    for k in range(n):
        slope = 3.0 / (1.0 + bins / (20 + 10 * k))
        harmonics = (np.sin(2 * np.pi * bins / (12 + 3 * k)) > 0.9) * rng.uniform(1, 4, (1, audio.WINDOW_FRAMES))
        window = (slope + harmonics) * rng.gamma(2.0, 0.5, (audio.N_BINS, audio.WINDOW_FRAMES))
        if k == n - 1:                      # the last window ends in silence (zero-range frames)
            window[:, frames[0] > 100 - 10 * k] = 0.0
        windows.append(window)
    return np.stack(windows)[..., None].astype(np.float32)


def export(run_dir: Path, fmt: str, out: Path | None = None) -> dict:
    """Export one run; returns what export.json records for it.

    Args:
        run_dir: the run folder.
        fmt: "onnx", "tflite" or "savedmodel".
        out: output path (default: inside the run folder).
    """
    import numpy as np
    import tensorflow as tf

    import separation
    window_model = separation.WindowModel.from_run(run_dir)
    spec = tf.TensorSpec((None, *window_model.model.input_shape[1:]), tf.float32, name="mix_mag")
    # the graph separation runs, traced again with a named input for the exported signature
    fn = tf.function(window_model._vocal_mag_graph, input_signature=[spec])
    out = Path(out or run_dir / DEFAULT_NAMES[fmt])
    partial = out.with_name(out.name + ".partial")
    _remove(partial)
    started = time.time()
    try:
        if fmt == "onnx":
            import tf2onnx
            tf2onnx.convert.from_function(fn, input_signature=[spec], opset=separation.ONNX_OPSET, output_path=str(partial))
        elif fmt == "savedmodel":
            write_saved_model(window_model, fn, spec, partial)
        else:
            # via a SavedModel: converting the tf.function directly keeps the weights as resource
            # variables that the TFLite runtime cannot read (READ_VARIABLE fails)
            import tempfile
            with tempfile.TemporaryDirectory(dir=scratch.scratch_dir()) as tmp:
                write_saved_model(window_model, fn, spec, Path(tmp) / "savedmodel")
                converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "savedmodel"),
                                                                     signature_keys=["serve"])
                partial.write_bytes(converter.convert())
        seconds = time.time() - started
        windows = check_windows()
        expected = window_model.forward(windows)
        got = run_export(partial, fmt, windows)
    except BaseException:
        _remove(partial)
        raise
    difference = float(np.max(np.abs(got - expected)))
    scale = float(np.max(np.abs(expected))) or 1.0
    if not np.isfinite(difference) or difference > TOLERANCE * scale:
        _remove(partial)
        raise SystemExit(f"export: the {fmt} graph differs from the Keras model by {difference:.3g} "
                         f"(largest output {scale:.3g}); nothing written")
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(partial, out)
    record = {"format": fmt, "path": out.name if out.parent == Path(run_dir) else str(out),
              "weights_sha1": separation.weights_digest(Path(run_dir)), "max_abs_difference": difference,
              "largest_output": scale, "exported": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(seconds, 1),
              "versions": versions(fmt)}
    if out.parent == Path(run_dir):
        record_path = Path(run_dir) / separation.EXPORT_RECORD
        records = json.loads(record_path.read_text()) if record_path.exists() else {}
        records[out.name] = record
        import runs
        runs.write_json(record_path, records)
    return {"out": out, **record}


def write_saved_model(window_model, fn, spec, path: Path) -> None:
    """Keras' ExportArchive (what model.export writes) with the whole graph as its 'serve' endpoint."""
    import keras
    archive = keras.export.ExportArchive()
    archive.track(window_model.model)
    archive.add_endpoint("serve", fn, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def run_export(path: Path, fmt: str, windows):
    """Run an exported graph on windows with its own runtime (no Keras model involved)."""
    if fmt in ("onnx", "tflite"):
        import separation
        return separation.ExportedWindowModel(path, fmt, batch_size=len(windows)).forward(windows)
    import tensorflow as tf
    loaded = tf.saved_model.load(str(path))        # keep a reference: its variables live as long as it does
    return loaded.serve(windows).numpy()


def versions(fmt: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for pkg in ("tensorflow", "tensorflow-cpu", "keras") + {"onnx": ("tf2onnx", "onnx", "onnxruntime"),
                                          "tflite": ("ai-edge-litert",), "savedmodel": ()}[fmt]:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    hardware.configure_tensorflow()
    import runs
    try:
        runs.weights_file(args.run)
        runs.settings(args.run)
    except runs.RunError as exc:
        raise SystemExit(f"export: {exc}")
    try:
        result = export(args.run, args.format, args.out)
    except ImportError as exc:
        need = {"onnx": "tf2onnx onnxruntime", "tflite": "ai-edge-litert"}.get(args.format, "tensorflow")
        raise SystemExit(f"export: {exc.name or exc} is not installed: pip install {need}")
    size = sum(p.stat().st_size for p in result["out"].rglob("*") if p.is_file()) if result["out"].is_dir() \
        else result["out"].stat().st_size
    print(f"export: {args.run} -> {result['out']} ({args.format}, {size / 2 ** 20:.1f} MB, batch size open); "
          f"max abs difference to the Keras model {result['max_abs_difference']:.2g} "
          f"(largest output {result['largest_output']:.3g}) in {result['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
