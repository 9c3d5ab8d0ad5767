"""Train the paper's U-Net (one Table I configuration, or the whole grid) from the HDF5 caches.

    python train.py --norm frequency --scaler minmax --loss mae          # paper defaults
    python train.py --base-filters 16 --epochs 5                         # CPU-size model
    python train.py --grid --base-filters 8 --epochs 3                   # all 8 Table I rows
    python train.py --norm time --scaler robust --loss mse --resume      # continue a run

Each run writes results/runs/<norm>-<scaler>-<loss>[-<tag>]/: best.weights.h5 (lowest
validation loss), last.weights.h5, resume.keras (model + optimizer after the last completed
epoch), config.json (arguments, cache parameters and fingerprint, package versions, git
commit, device, results), history.csv and training_curves.png.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import augment
import normalize

ROOT = Path(__file__).resolve().parent
LOSSES = ("mae", "mse")
GRID = list(itertools.product(normalize.AXES, ("minmax", "robust"), LOSSES))   # Table I: 2 x 2 x 2


# ---------------------------------------------------------------- arguments
def build_parser() -> argparse.ArgumentParser:
    import model
    p = argparse.ArgumentParser(description="Train the U-Net vocal separator (paper defaults: Adam 1e-3, "
                                            "batch 64, 20 epochs, 64 base filters).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("Table I configuration")
    g.add_argument("--norm", choices=normalize.AXES, default="frequency", help="normalization axis")
    g.add_argument("--scaler", choices=normalize.SCALERS, default="minmax",
                   help="minmax (paper text), max (released code) or robust (Table I 'Quantile')")
    g.add_argument("--loss", choices=LOSSES, default="mae", help="training loss")
    g.add_argument("--grid", action="store_true",
                   help="train the 8 Table I configurations (time/frequency x minmax/robust x mae/mse) "
                        "in turn, skipping complete runs; --norm/--scaler/--loss are ignored")
    g = p.add_argument_group("model")
    g.add_argument("--arch", choices=model.ARCHS, default="paper", help="U-Net architecture")
    g.add_argument("--target", choices=model.TARGETS, default="direct",
                   help="direct: regress the normalized vocal (paper); mask: soft mask, loss on the mask "
                        "(report 002); masked: soft mask x normalized mixture, loss on the vocal (Jansson)")
    g.add_argument("--base-filters", type=int, default=64, help="filters of the first level (64 = paper; 8-16 on a CPU)")
    g = p.add_argument_group("optimization")
    g.add_argument("--epochs", type=int, default=20, help="epochs")
    g.add_argument("--batch-size", type=int, default=64, help="global batch size")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="cosine: decay from --lr to 1%% of it over all --epochs (steady on a noisy "
                        "validation set, where plateau halving decays too early)")
    g.add_argument("--reduce-lr-on-plateau", action="store_true",
                   help="halve the learning rate after 2 epochs without validation improvement (report 001)")
    g.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without validation improvement (report 002); 0 = off")
    g.add_argument("--steps-per-epoch", type=int, default=0,
                   help="cap on batches per epoch (0 = a whole augmented epoch)")
    g.add_argument("--seed", type=int, default=0, help="seed for weights, augmentation and shuffling")
    augment.add_augment_args(p)
    g = p.add_argument_group("data and output")
    g.add_argument("--data", nargs="+", default=["data/prepared"],
                   help="cache folders or files from data_prep.py (several = one dataset)")
    g.add_argument("--run-dir", type=Path, default=None,
                   help="output folder (default: results/runs/<norm>-<scaler>-<loss>[-<tag>])")
    g.add_argument("--runs-root", type=Path, default=ROOT / "results" / "runs", help="parent of default run folders")
    g.add_argument("--tag", default="", help="suffix for the default run folder name")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run from its last completed epoch")
    g.add_argument("--force", action="store_true", help="overwrite a complete run instead of skipping it")
    g = p.add_argument_group("hardware")
    g.add_argument("--precision", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"), default="auto",
                   help="auto = mixed_float16 on a GPU, float32 on a CPU")
    g.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                   help="XLA compilation; auto = on for a GPU, off on a CPU (where it slows Conv2D 2-4x)")
    g.add_argument("--distribute", choices=("none", "mirrored"), default="none",
                   help="mirrored: tf.distribute.MirroredStrategy over the local GPUs (over the logical "
                        "CPU devices when there is no GPU)")
    g.add_argument("--verbose", type=int, default=1 if sys.stdout.isatty() else 2,
                   help="Keras progress output: 1 = bar, 2 = a line per epoch")
    return p


def run_name(args) -> str:
    return "-".join([args.norm, args.scaler, args.loss] + ([args.tag] if args.tag else []))


# ---------------------------------------------------------------- provenance
def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_info() -> dict:
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (ValueError, RuntimeError):
            names.append(gpu.name)
    return {"gpus": names, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}


def resolve_hardware(args) -> tuple[str, bool]:
    """(precision policy, jit) after 'auto'."""
    import tensorflow as tf
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    precision = args.precision if args.precision != "auto" else ("mixed_float16" if has_gpu else "float32")
    jit = has_gpu if args.jit == "auto" else args.jit == "on"
    return precision, jit


def make_strategy(distribute: str):
    """The tf.distribute strategy: MirroredStrategy over the GPUs (or the logical CPUs if none)."""
    import tensorflow as tf
    if distribute != "mirrored":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices=devices)


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


# ---------------------------------------------------------------- training
class EpochState:
    """Keras callback: after each epoch, save last.weights.h5, resume.keras and the config."""

    def __init__(self, run_dir: Path, config: dict):
        import keras

        outer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                outer.on_epoch_end(self.model, epoch, logs or {})

        self.callback = _Callback()
        self.run_dir, self.config = run_dir, config

    def on_epoch_end(self, model, epoch: int, logs: dict) -> None:
        model.save_weights(self.run_dir / "last.weights.h5")
        tmp = self.run_dir / "resume.partial.keras"
        model.save(tmp)                     # model + optimizer state, renamed only when complete
        os.replace(tmp, self.run_dir / "resume.keras")
        state = self.config.setdefault("state", {})
        state["completed_epochs"] = epoch + 1
        val = logs.get("val_loss")
        if val is not None and (state.get("best_val_loss") is None or val < state["best_val_loss"]):
            state["best_val_loss"], state["best_epoch"] = float(val), epoch + 1
        write_json(self.run_dir / "config.json", self.config)


def plot_curves(run_dirs: list[Path], path: Path, title: str = "") -> Path | None:
    """Validation (solid) and training (dashed) loss per epoch of one or more runs, from history.csv."""
    import csv
    histories = [(d, list(csv.DictReader((d / "history.csv").open()))) for d in run_dirs
                 if (d / "history.csv").exists()]
    histories = [(d, rows) for d, rows in histories if rows]
    if not histories:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5) if len(histories) > 1 else (6, 4))
    for run_dir, rows in histories:
        epochs = [int(r["epoch"]) + 1 for r in rows]
        line, = ax.plot(epochs, [float(r["val_loss"]) for r in rows], marker="o", label=run_dir.name)
        ax.plot(epochs, [float(r["loss"]) for r in rows], ls="--", color=line.get_color(), alpha=0.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (validation solid, training dashed)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def train_one(args, strategy=None) -> dict:
    """Train one configuration; returns its config dict (with results)."""
    import keras
    import tensorflow as tf

    import model as model_lib
    import pipeline
    from cache import WindowStore, resolve_caches

    run_dir = Path(args.run_dir) if args.run_dir else args.runs_root / run_name(args)
    if model_lib.is_complete_run(run_dir) and not args.force:
        print(f"train: {run_dir} is complete; skipped (--force retrains it)")
        return json.loads((run_dir / "config.json").read_text())
    resume_file = run_dir / "resume.keras"
    if resume_file.exists() and not args.resume and not args.force:
        raise SystemExit(f"train: {run_dir} holds an unfinished run: --resume continues it, --force restarts it")
    if args.resume and not resume_file.exists():
        print(f"train: nothing to resume in {run_dir}; starting from scratch", file=sys.stderr)
    resuming = args.resume and resume_file.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resuming:
        for stale in ("history.csv", "best.weights.h5", "last.weights.h5", "resume.keras"):
            (run_dir / stale).unlink(missing_ok=True)

    train_store = WindowStore(resolve_caches(args.data, "train"))
    valid_store = WindowStore(resolve_caches(args.data, "valid"))
    cfg = pipeline.PipelineConfig(args.norm, args.scaler, args.target, args.batch_size, args.seed, args.augment,
                                  args.mix, args.splice_across_songs, args.drop_silent_vocals)
    n_examples = pipeline.epoch_size(train_store, cfg)
    steps = max(1, -(-n_examples // args.batch_size))
    if args.steps_per_epoch:
        steps = min(steps, args.steps_per_epoch)
    precision, jit = resolve_hardware(args)

    config = json.loads((run_dir / "config.json").read_text()) if resuming else {}
    initial_epoch = config.get("state", {}).get("completed_epochs", 0) if resuming else 0
    config.update({
        "name": run_dir.name, "status": "running",
        "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
                 if k not in ("grid", "resume", "force", "verbose")},
        "data": {"train": [str(p) for p in train_store.paths], "valid": [str(p) for p in valid_store.paths],
                 "fingerprint": {"train": train_store.fingerprint(), "valid": valid_store.fingerprint()},
                 "params": train_store.params[0], "train_windows": len(train_store),
                 "valid_windows": len(valid_store), "train_songs": train_store.n_songs,
                 "valid_songs": valid_store.n_songs, "examples_per_epoch": n_examples, "steps_per_epoch": steps},
        "hardware": {"precision": precision, "jit": jit, "distribute": args.distribute, **device_info()},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        "git_commit": git_commit(), "seed": args.seed,
    })
    config.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S"))
    write_json(run_dir / "config.json", config)

    keras.mixed_precision.set_global_policy(precision)
    strategy = strategy or make_strategy(args.distribute)
    config["hardware"]["replicas"] = strategy.num_replicas_in_sync
    write_json(run_dir / "config.json", config)
    with strategy.scope():
        if resuming:
            net = keras.models.load_model(resume_file)
        else:
            net = model_lib.build_unet(args.base_filters, args.arch, args.target)
            lr = args.lr if args.lr_schedule == "constant" else \
                keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=args.epochs * steps, alpha=0.01)
            net.compile(optimizer=keras.optimizers.Adam(lr), loss=args.loss, jit_compile=jit)
        if resuming and jit != net.jit_compile:
            net.jit_compile = jit

    best_so_far = config.get("state", {}).get("best_val_loss")
    callbacks = [
        keras.callbacks.ModelCheckpoint(run_dir / "best.weights.h5", monitor="val_loss", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best_so_far),
        keras.callbacks.CSVLogger(run_dir / "history.csv", append=resuming),
        EpochState(run_dir, config).callback,
    ]
    if args.reduce_lr_on_plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, verbose=1))
    if args.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.early_stopping))

    train_ds = pipeline.train_dataset(train_store, cfg, args.epochs, initial_epoch, steps)
    valid_ds = pipeline.eval_dataset(valid_store, cfg)
    print(f"train: {run_dir.name}: {train_store.n_songs} train songs ({len(train_store)} windows -> "
          f"{n_examples} examples/epoch, {steps} steps of {args.batch_size}), {valid_store.n_songs} validation "
          f"songs ({len(valid_store)} windows); {net.count_params():,} parameters; {precision}, "
          f"jit {'on' if jit else 'off'}; epochs {initial_epoch + 1}..{args.epochs}", flush=True)
    started = time.time()
    interrupted = False
    try:
        net.fit(train_ds, validation_data=valid_ds, epochs=args.epochs, initial_epoch=initial_epoch,
                steps_per_epoch=steps, callbacks=callbacks, verbose=args.verbose, shuffle=False)
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.time() - started

    config = json.loads((run_dir / "config.json").read_text())
    state = config.get("state", {})
    done = state.get("completed_epochs", 0)
    trained_epochs = done - initial_epoch
    results = config.setdefault("results", {})
    results.update({
        "best_val_loss": state.get("best_val_loss"), "best_epoch": state.get("best_epoch"),
        "completed_epochs": done, "train_seconds": results.get("train_seconds", 0) + elapsed,
        "examples_per_second": (trained_epochs * steps * args.batch_size / elapsed) if trained_epochs else None,
        "mixture_val_loss": mixture_baseline(valid_ds, args.loss, args.target),
    })
    stopped_early = not interrupted and done < args.epochs
    config["status"] = "interrupted" if interrupted else "complete"
    if stopped_early:
        results["stopped_early_at_epoch"] = done
    config["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_json(run_dir / "config.json", config)
    plot_curves([run_dir], run_dir / "training_curves.png", run_dir.name)
    if interrupted:
        print(f"\ntrain: interrupted during epoch {done + 1}; epochs 1..{done} are saved in {run_dir}; "
              f"continue with the same command plus --resume")
        raise SystemExit(130)
    eps = results["examples_per_second"]
    print(f"train: {run_dir.name}: best val_loss {results['best_val_loss']:.5g} at epoch {results['best_epoch']} "
          f"(predicting the mixture: {results['mixture_val_loss']:.5g}); {trained_epochs} epochs in {elapsed:.0f} s"
          f"{f', {eps:.1f} examples/s' if eps else ''} -> {run_dir}")
    return config


def mixture_baseline(valid_ds, loss: str, target: str) -> float:
    """Validation loss of the trivial estimate: the (normalized) mixture itself, or an all-ones mask."""
    import numpy as np
    total, count = 0.0, 0
    for x, y in valid_ds:
        estimate = np.ones_like(y) if target == "mask" else x.numpy()
        err = estimate - y.numpy()
        total += float(np.sum(np.abs(err) if loss == "mae" else err ** 2))
        count += err.size
    return total / max(count, 1)


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lr_schedule != "constant" and args.reduce_lr_on_plateau:
        parser.error("--reduce-lr-on-plateau cannot change a --lr-schedule; use one of them")
    import keras
    keras.utils.set_random_seed(args.seed)
    if not args.grid:
        train_one(args)
        return
    if args.run_dir:
        raise SystemExit("train: --grid names its runs itself; use --runs-root and --tag instead of --run-dir")
    summary = []
    for norm, scaler, loss in GRID:
        run_args = argparse.Namespace(**{**vars(args), "norm": norm, "scaler": scaler, "loss": loss,
                                         "resume": args.resume or (args.runs_root / run_name(argparse.Namespace(
                                             norm=norm, scaler=scaler, loss=loss, tag=args.tag)) / "resume.keras").exists()})
        keras.backend.clear_session()
        keras.utils.set_random_seed(args.seed)
        config = train_one(run_args)
        summary.append((config["name"], config.get("results", {}).get("best_val_loss")))
    print("train: grid done: " + ", ".join(f"{n} {v:.4g}" for n, v in summary if v is not None))


if __name__ == "__main__":
    main()
