"""Batch-normalization statistics recomputed on chosen training windows: a run whose weights are
another run's, with every BatchNormalization layer's moving mean and variance replaced by the
average of its batch statistics over those windows.

    python bench/recalibrate_bn.py pretrained --data data/musdb18-7 --out results/runs-select/bn-v7-musdb
    python bench/ablation.py --runs results/runs-select/bn-v7-musdb --sets valid test

Why: train.py selects the epoch with the lowest validation loss, and with batches of 16 the moving
statistics are an exponential average of the last few dozen batches, mostly MIR-1K clips, so they
differ from epoch to epoch and from the MUSDB18 songs the model is judged on. Recomputing them
(what SWA does after averaging weights) changes no learned weight and costs one pass over the
windows. The batch statistics are those of train.py's batches (the same size, the mixture windows
scaled by the run's normalization), with dropout off so that they are the inputs each layer sees at
inference. Measured on v7 (README, ablation): both the MUSDB18 windows' statistics and all training
windows' lose 0.5 dB on validation against the moving averages, so the shipped model keeps those.
The new run is a complete run folder (config.json with a "bn_recalibration" entry,
best.weights.h5 without optimizer state); its name and training history stay the source run's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import runs  # noqa: E402


def recalibrate(run: Path, out: Path, data: list[str], batch_size: int = 16, weights: str = "best",
                seed: int = 0, progress: bool = True) -> Path:
    """Write OUT/ (config.json, best.weights.h5): RUN's weights with recomputed BN statistics.

    Args:
        run: a complete run folder (or pretrained/).
        out: the new run folder (must not exist).
        data: cache folders or files; their training windows (unaugmented) give the statistics.
        batch_size: windows per batch (train.py's batch size keeps the statistics its layers saw).
        weights: which weights of the run, "best" or "last".
        seed: order of the windows (the last, incomplete batch is left out).
    """
    import keras
    import numpy as np
    from tqdm import tqdm

    import normalize
    from cache import CacheError, WindowStore, resolve_caches

    if out.exists():
        raise SystemExit(f"recalibrate_bn: {out} exists; choose another --out or remove it")
    try:
        net, _ = runs.load_run(run, weights)
        config = runs.derived_config(run)
        store = WindowStore(resolve_caches(data, "train"))
    except (runs.RunError, CacheError) as exc:
        raise SystemExit(f"recalibrate_bn: {exc}") from None
    settings = runs.RunSettings.from_config(config)
    n_batches = len(store) // batch_size
    if n_batches == 0:
        raise SystemExit(f"recalibrate_bn: {len(store)} windows in {data} make no batch of {batch_size}")
    norms = [layer for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization)]
    dropouts = [layer for layer in net.layers if isinstance(layer, keras.layers.Dropout)]
    if not norms:
        raise SystemExit(f"recalibrate_bn: {run} has no BatchNormalization layer")
    for layer in dropouts:               # (the paper's U-Net has none; Jansson's has)
        layer.rate = 0.0
    order = np.random.default_rng(seed).permutation(len(store))
    for k in tqdm(range(n_batches), desc="batches", unit="batch", disable=not progress):
        index = np.sort(order[k * batch_size:(k + 1) * batch_size])        # h5py reads in order
        mix = np.stack([store.read("mix_mag", int(i)) for i in index]).astype(np.float32)
        x = normalize.transform(mix, normalize.fit(mix, settings.norm, settings.scaler))
        for layer in norms:              # moving = running mean of the batch statistics so far
            layer.momentum = k / (k + 1)
        net(x, training=True)
    with runs.derived_run(out, "recalibrate_bn") as partial:
        net.save_weights(partial / "best.weights.h5")
        config["bn_recalibration"] = {"run": str(run), "weights": weights, "data": [str(p) for p in store.paths],
                                      "windows": n_batches * batch_size, "batch_size": batch_size, "seed": seed}
        runs.write_json(partial / "config.json", config)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a complete run folder, or pretrained")
    p.add_argument("--data", nargs="+", required=True, help="caches whose training windows give the statistics")
    p.add_argument("--out", type=Path, required=True, help="the new run folder")
    p.add_argument("--batch-size", type=int, default=16, help="windows per batch (train.py's)")
    p.add_argument("--weights", choices=["best", "last"], default="best")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = recalibrate(args.run, args.out, args.data, args.batch_size, args.weights, args.seed)
    info = runs.read_config(out)["bn_recalibration"]
    print(f"recalibrate_bn: {args.run}'s BN statistics over {info['windows']} windows of "
          f"{', '.join(info['data'])} -> {out}")


if __name__ == "__main__":
    main()
