"""Training throughput: the model alone and the input pipeline alone, in examples per second.

    python bench/train.py                                  # CPU defaults
    python bench/train.py --bases 64 --batch-size 64 --precision float32 mixed_float16 --jit off on   # a GPU

Model alone: Keras fit on one constant batch repeated (no input cost), per base width,
precision and XLA setting. Pipeline alone: the tf.data training pipeline (augmentation on,
per-window normalization) drained without a model, for each scaler; and the online remixing
pipeline (remix.py through pipeline.remix_dataset, target masked2) when a sources.h5 is found.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def recipe(loss: str) -> str:
    """The target a benchmark trains with `loss`: the SDR losses train the shipped models' two direct
    outputs (their label also carries the raw spectra, losses.spectra_channels)."""
    import losses
    return "direct2" if losses.needs_spectra(loss) else "direct"


def bench_model(base: int, batch: int, precision: str, jit: bool, seconds: float, arch: str,
                loss: str = "mae") -> tuple[float, int]:
    """(examples/s, timed steps) of Keras fit on one constant batch, on any Keras backend.

    The first fit call builds and compiles (and gives a step time to size the timed call); the
    second reuses the compiled train function.
    """
    import keras
    import numpy as np

    import losses
    import model as model_lib
    import targets
    target = recipe(loss)
    n_sources = len(targets.sources(target))
    label_channels = n_sources + (losses.spectra_channels(n_sources) if losses.needs_spectra(loss) else 0)

    class _SameBatch(keras.utils.PyDataset):
        def __init__(self, steps):
            super().__init__()
            self.steps = steps
            rng = np.random.default_rng(0)
            x = rng.random((batch, 512, 128, 1), dtype=np.float32)
            self.batch = (x, rng.random((batch, 512, 128, label_channels), dtype=np.float32))

        def __len__(self):
            return self.steps

        def __getitem__(self, index):
            return self.batch

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
    try:
        net = model_lib.build_unet(base, arch, target)
        net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.get(loss, "time", "robust", n_sources),
                    jit_compile=jit)
        net.fit(_SameBatch(2), epochs=1, verbose=0, shuffle=False)                 # build + compile
        started = time.time()
        net.fit(_SameBatch(2), epochs=1, verbose=0, shuffle=False)
        steps = max(3, int(seconds / max((time.time() - started) / 2, 1e-6)))
        started = time.time()
        net.fit(_SameBatch(steps), epochs=1, verbose=0, shuffle=False)
        return steps * batch / (time.time() - started), steps
    finally:
        keras.mixed_precision.set_global_policy("float32")


def drain(dataset, batch: int, batches: int) -> float:
    """Examples per second of a dataset after 5 warm-up batches."""
    iterator = iter(dataset)
    for _ in range(5):
        next(iterator)
    started = time.time()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.time() - started)


def bench_pipeline(data: list[str], scaler: str, batch: int, batches: int, loss: str = "mae") -> float:
    """Examples/s of train.py's input pipeline for this backend: tf.data under TensorFlow, else the
    keras.utils.PyDataset path (drained here batch after batch, without its reader threads)."""
    import hardware
    import pipeline
    from cache import WindowStore, resolve_caches
    store = WindowStore(resolve_caches(data, "train"))
    target = recipe(loss)
    cfg = pipeline.PipelineConfig(norm="time" if target == "direct2" else "frequency", scaler=scaler, batch_size=batch,
                                  augment=True, target=target, loss=loss)
    if hardware.keras_backend() == "tensorflow":
        return drain(pipeline.train_dataset(store, cfg, epochs=1000), batch, batches)
    batches_of = pipeline.numpy_train_dataset(store, cfg, steps_per_epoch=batches + 5)
    return drain((batches_of[i] for i in range(len(batches_of))), batch, batches)


def bench_remix(sources_path: str, scaler: str, batch: int, batches: int) -> float:
    import pipeline
    import remix
    import sources
    sampler = remix.RemixSampler(sources.SourceStore(sources_path))
    cfg = pipeline.PipelineConfig(norm="time", scaler=scaler, target="masked2", batch_size=batch)
    return drain(pipeline.remix_dataset(sampler, cfg, epochs=1, steps_per_epoch=batches + 5), batch, batches)


def default_sources() -> str | None:
    found = [ROOT / "data" / d / "sources.h5" for d in ("full", "prepared")]
    return next((str(p) for p in found if p.exists()), None)


def default_data() -> list[str]:
    real = [str(ROOT / "data" / d) for d in ("musdb18-7", "mir1k") if (ROOT / "data" / d / "train.h5").exists()]
    return real or [str(ROOT / "data" / "prepared")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bases", type=int, nargs="+", default=[8, 16, 64], help="base filter counts")
    p.add_argument("--arch", default="paper", help="architecture")
    p.add_argument("--batch-size", type=int, default=16, help="batch size for the model benchmark")
    p.add_argument("--precision", nargs="+", default=["float32", "mixed_bfloat16"], help="precision policies")
    p.add_argument("--jit", nargs="+", choices=("off", "on"), default=["off"], help="XLA settings")
    p.add_argument("--seconds", type=float, default=20.0, help="rough time budget per model measurement")
    p.add_argument("--data", nargs="+", default=None, help="caches for the pipeline benchmark")
    p.add_argument("--scalers", nargs="+", default=["minmax", "robust"], help="scalers for the pipeline benchmark")
    p.add_argument("--sources", default=None, help="sources.h5 for the online remixing benchmark "
                                                   "(default: data/full or data/prepared, if there)")
    p.add_argument("--skip", nargs="*", default=[], choices=["model", "pipeline"], help="parts to skip")
    p.add_argument("--batches", type=int, default=40, help="batches of 64 the pipeline benchmark times (after 5 untimed)")
    p.add_argument("--loss", default="mae", choices=("mae", "mse", "sdr", "sdrmask"),
                   help="the model's loss and the pipeline's label: an SDR loss trains two direct outputs on "
                        "labels with the raw spectra (the shipped models' recipe: sdrmask)")
    args = p.parse_args()
    from common import print_machine
    print_machine()
    import hardware
    gpus = hardware.gpu_names()
    print(f"device: {'GPU ' + ', '.join(gpus) if gpus else f'CPU ({os.cpu_count()} cores)'}; "
          f"Keras backend {hardware.keras_backend()}")
    if "model" not in args.skip:
        print(f"model alone ({args.arch} U-Net, target {recipe(args.loss)}, batch {args.batch_size}, Adam + {args.loss}):")
        for base, precision, jit in itertools.product(args.bases, args.precision, args.jit):
            rate, steps = bench_model(base, args.batch_size, precision, jit == "on", args.seconds, args.arch, args.loss)
            print(f"  base {base:3d}  {precision:15s} jit {jit:3s}: {rate:8.1f} examples/s  ({steps} steps)", flush=True)
    if "pipeline" not in args.skip:
        data = args.data or default_data()
        print(f"input pipeline alone (augmentation on, batch 64, label for {args.loss}, "
              f"{', '.join(Path(d).name for d in data)}):")
        for scaler in args.scalers:
            rate = bench_pipeline(data, scaler, 64, args.batches, args.loss)
            print(f"  {scaler:7s}: {rate:8.0f} examples/s (target >= 1000 with minmax)", flush=True)
        sources_path = args.sources or default_sources()
        if sources_path and hardware.keras_backend() == "tensorflow":
            print(f"online remixing pipeline alone (batch 64, {sources_path}, target masked2):")
            for scaler in args.scalers:
                rate = bench_remix(sources_path, scaler, 64, args.batches)
                print(f"  {scaler:7s}: {rate:8.0f} windows/s (target >= 1000)", flush=True)


if __name__ == "__main__":
    from common import run_and_exit
    run_and_exit(main)
