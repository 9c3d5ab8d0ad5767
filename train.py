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
import sys
import time
from collections import Counter
from pathlib import Path

import augment
import hardware
import losses
import normalize
import remix
import runs
import targets

LOSSES = ("mae", "mse")               # the Table I grid's
PAPER_SIZE_FILTERS = 32     # base filters from which a CPU run gets the CPU-size advice (paper: 64)
# Min/Max (or max) scaling + MAE sits on a plateau (each window's best constant: near-silence) for
# its first ~600 optimizer steps; the paper's row learned after 2,432 (README, results/collapse_controlled.md).
# The paper's 20 epochs of full MUSDB18 were ~2,900 steps of batch 64; on a smaller training set 20 epochs
# are far fewer steps, so the default length is the paper's epochs, or more epochs to reach PLATEAU_STEPS.
PAPER_EPOCHS = 20
WIDEN_NOISE = 0.01          # relative noise on a widened --init-from's kernels: copies must diverge
PLATEAU_STEPS = 2400
GRID = list(itertools.product(normalize.AXES, normalize.TABLE_SCALERS, LOSSES))   # Table I: 2 x 2 x 2


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
    g.add_argument("--loss", choices=losses.LOSSES, default="mae",
                   help="training loss: mae/mse on the normalized magnitudes (paper), or sdr: minus the waveform SDR "
                        "through an in-graph inverse STFT with the mixture phase (needs --online-remix; losses.py)")
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
    g.add_argument("--epochs", type=int, default=None,
                   help=f"epochs (default: the paper's {PAPER_EPOCHS}, or as many as make {PLATEAU_STEPS:,} optimizer "
                        f"steps when an epoch is shorter: the paper's 20 epochs of full MUSDB18 were ~2,900 steps, and "
                        f"with fewer the Min/Max + MAE rows stay on a plateau, README 'Why the paper's Min/Max rows "
                        f"collapse')")
    g.add_argument("--batch-size", type=int, default=64, help="global batch size")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="cosine: decay from --lr to 1%% of it over all --epochs (steady on a noisy "
                        "validation set, where plateau halving decays too early)")
    g.add_argument("--clipnorm", type=float, default=0, metavar="NORM",
                   help="clip each step's gradient to this global norm before Adam (bounds the steps a loud "
                        "batch would cause: the demo recipe's early spikes); 0 = no clipping")
    g.add_argument("--freeze-batchnorm", action="store_true",
                   help="keep the BatchNormalization layers in inference mode (statistics, scale and offset "
                        "fixed): for fine-tuning an --init-from run on small batches")
    g.add_argument("--dropout", type=float, default=0.0, metavar="RATE",
                   help="--arch paper: dropout after the three deepest decoder blocks, as Jansson's U-Net has "
                        "(regularization for small data); 0 = none, the paper's network")
    g.add_argument("--reduce-lr-on-plateau", action="store_true",
                   help="halve the learning rate after 2 epochs without validation improvement (report 001)")
    g.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without validation improvement (report 002); 0 = off")
    g.add_argument("--time-limit", type=float, default=0, metavar="MINUTES",
                   help="stop after the last epoch that is expected to end within this many minutes of "
                        "training (a lease on a shared GPU, say); 0 = no limit")
    g.add_argument("--steps-per-epoch", type=int, default=0,
                   help="cap on batches per epoch (0 = a whole augmented epoch)")
    g.add_argument("--seed", type=int, default=0, help="seed for weights, augmentation and shuffling")
    g.add_argument("--init-from", type=Path, default=None, metavar="RUN",
                   help="start from a trained run's best weights (e.g. pretrained): layers with the same name and "
                        "shape are copied; an output layer with more channels gets the old ones in its first "
                        "channels (a vocals head kept, an accompaniment head added); the rest stays fresh")
    g = p.add_argument_group("distillation (distill.py; with --loss sdr)")
    g.add_argument("--teacher", type=Path, default=None, metavar="RUN",
                   help="a trained run (e.g. pretrained/quality) whose estimates of each training mixture are "
                        "blended into the SDR loss's references; validation keeps the true ones")
    g.add_argument("--teacher-weight", type=float, default=0.5, metavar="W",
                   help="the teacher's share of each reference, 0..1")
    augment.add_augment_args(p)
    remix.add_remix_args(p)
    g = p.add_argument_group("data and output")
    g.add_argument("--data", nargs="+", default=["data/prepared"],
                   help="cache folders or files from data_prep.py (several = one dataset)")
    g.add_argument("--run-dir", type=Path, default=None,
                   help="output folder (default: results/runs/<norm>-<scaler>-<loss>[-<tag>])")
    g.add_argument("--runs-root", type=Path, default=runs.RUNS_ROOT, help="parent of default run folders")
    g.add_argument("--tag", default="", help="suffix for the default run folder name")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run from its last completed epoch")
    g.add_argument("--force", action="store_true", help="overwrite a complete run instead of skipping it")
    g = p.add_argument_group("hardware")
    g.add_argument("--precision", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"), default="auto",
                   help="auto = mixed_float16 on a GPU; on a CPU mixed_bfloat16 where bfloat16 runs in hardware "
                        "(AMX or AVX512-BF16), else float32")
    g.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                   help="XLA compilation; auto = on for a GPU, off on a CPU (where it slows Conv2D 2-4x)")
    g.add_argument("--distribute", choices=("none", "mirrored"), default="none",
                   help="mirrored: tf.distribute.MirroredStrategy over the local GPUs (over the logical "
                        "CPU devices when there is no GPU)")
    g.add_argument("--eager", action="store_true",
                   help="run each step eagerly, without tracing a graph: saves the ~10 s of tracing at the start "
                        "(2 CPU cores) at about 3x the time per step; for smoke runs of a few steps and debugging")
    g.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1 if sys.stderr.isatty() else 2,
                   help="progress: 1 = a per-step bar with examples/s and ETAs, 2 = a line per epoch, 0 = quiet "
                        "(1 and 2 also print the run's estimated duration after its first steps)")
    return p


def resolve_hardware(args) -> tuple[str, bool]:
    """(precision policy, jit) after 'auto' (jit auto: XLA on a GPU with TensorFlow, always with JAX,
    whose ops run through XLA anyway; never with PyTorch, whose torch.compile costs minutes)."""
    has_gpu = bool(hardware.gpu_names())
    cpu_precision = "mixed_bfloat16" if hardware.has_fast_bfloat16() else "float32"
    precision = args.precision if args.precision != "auto" else ("mixed_float16" if has_gpu else cpu_precision)
    backend = hardware.keras_backend()
    auto_jit = {"jax": True, "torch": False}.get(backend, has_gpu)
    jit = auto_jit if args.jit == "auto" else args.jit == "on"
    return precision, jit and not args.eager


def make_strategy(distribute: str):
    """The tf.distribute strategy: MirroredStrategy over the GPUs (or the logical CPUs if none);
    None for the JAX and PyTorch backends (one device)."""
    if hardware.keras_backend() != "tensorflow":
        if distribute != "none":
            raise SystemExit(f"train: --distribute {distribute} needs the TensorFlow backend "
                             f"(KERAS_BACKEND is {hardware.keras_backend()})")
        return None
    import tensorflow as tf
    if distribute != "mirrored":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices=devices)


# ---------------------------------------------------------------- training
def train_one(args, strategy=None) -> dict:
    """Train one configuration; returns its config dict (with results)."""
    from cache import CacheError, WindowStore, resolve_caches

    if args.vocal_gain_db < 0 or (args.vocal_gain_db and args.online_remix):
        raise SystemExit(f"train: --vocal-gain-db wants a range >= 0 dB for the fixed windows (online remixing draws "
                         f"its own gains: --remix-gain); got {args.vocal_gain_db} with --online-remix {args.online_remix}")
    if not 0 <= args.dropout < 1 or (args.dropout and args.arch != "paper"):
        raise SystemExit(f"train: --dropout wants a rate in [0, 1) for --arch paper (the Jansson U-Net has its own); "
                         f"got {args.dropout} with --arch {args.arch}")
    run_dir = Path(args.run_dir) if args.run_dir else args.runs_root / runs.run_name(args)
    if runs.is_complete_run(run_dir) and not args.force:
        print(f"train: {run_dir} is complete; skipped (--force retrains it)")
        return json.loads((run_dir / "config.json").read_text())
    try:
        train_store = WindowStore(resolve_caches(args.data, "train"))
        valid_store = WindowStore(resolve_caches(args.data, "valid"))
        augment.window_copies(train_store, dict(args.source_weight))      # a source name the caches lack
    except (CacheError, ValueError) as exc:
        raise SystemExit(f"train: {exc}")
    import keras
    policy = keras.mixed_precision.global_policy()
    with runs.RunLock(run_dir, "train"):
        try:
            return _train_locked(args, run_dir, train_store, valid_store, strategy)
        finally:
            # The precision policy is process-global: give the caller back the one it had.
            keras.mixed_precision.set_global_policy(policy)


def _train_locked(args, run_dir: Path, train_store, valid_store, strategy) -> dict:
    """train_one's work, with the run folder locked against a second train.py."""
    import keras

    import model as model_lib
    import pipeline
    resume_file = run_dir / "resume.keras"
    if resume_file.exists() and not args.resume and not args.force:
        raise SystemExit(f"train: {run_dir} holds an unfinished run: --resume continues it, --force restarts it")
    if args.resume and not resume_file.exists():
        print(f"train: nothing to resume in {run_dir}; starting from scratch", file=sys.stderr)
    resuming = args.resume and resume_file.exists()
    if not resuming:
        for stale in ("history.csv", "best.weights.h5", "last.weights.h5", "resume.keras"):
            (run_dir / stale).unlink(missing_ok=True)

    cfg = pipeline.PipelineConfig(norm=args.norm, scaler=args.scaler, target=args.target,
                                  batch_size=args.batch_size, seed=args.seed, augment=args.augment, mix=args.mix,
                                  splice_across_songs=args.splice_across_songs,
                                  drop_silent_vocals=args.drop_silent_vocals, loss=args.loss,
                                  source_weights=dict(args.source_weight) or None,
                                  vocal_gain_db=args.vocal_gain_db)
    if args.teacher is not None:
        if not losses.needs_spectra(args.loss):
            raise SystemExit(f"train: --teacher blends the SDR loss's references; use it with --loss sdr, not {args.loss}")
        import distill
        try:
            cfg.teacher = distill.Teacher(args.teacher, args.teacher_weight)
        except (ValueError, OSError) as exc:             # OSError includes runs.RunError
            raise SystemExit(f"train: --teacher {args.teacher}: {exc}")
    sampler = None
    if args.online_remix:
        import sources
        try:
            sampler = remix.RemixSampler(sources.SourceStore(args.online_remix), remix.config_from_args(args), args.seed)
        except (sources.SourceError, ValueError) as exc:
            raise SystemExit(f"train: {exc}")
        # remixed examples are never repeated: an epoch is as long as asked (else as the caches)
        n_examples = args.remix_examples or (args.steps_per_epoch * args.batch_size if args.steps_per_epoch
                                             else len(train_store))
    else:
        n_examples = pipeline.epoch_size(train_store, cfg)
    steps = max(1, -(-n_examples // args.batch_size))
    if args.steps_per_epoch:
        steps = min(steps, args.steps_per_epoch)
    epochs = default_epochs(steps) if args.epochs is None else args.epochs
    precision, jit = resolve_hardware(args)

    config = json.loads((run_dir / "config.json").read_text()) if resuming else {}
    initial_epoch = config.get("state", {}).get("completed_epochs", 0) if resuming else 0
    config.update({
        "name": run_dir.name, "status": "running",
        "args": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
                    if k not in ("grid", "resume", "force", "verbose")}, "epochs": epochs},
        "epochs_rule": ("as given" if args.epochs is not None else
                        f"default: max({PAPER_EPOCHS}, {PLATEAU_STEPS} steps / {steps} per epoch)"),
        "data": {"train": [str(p) for p in train_store.paths], "valid": [str(p) for p in valid_store.paths],
                 "fingerprint": {"train": train_store.fingerprint(), "valid": valid_store.fingerprint()},
                 "params": train_store.params[0], "train_windows": len(train_store),
                 "valid_windows": len(valid_store), "train_songs": train_store.n_songs,
                 "train_sources": dict(sorted(Counter(train_store.songs["source"]).items())),
                 "valid_songs": valid_store.n_songs, "examples_per_epoch": n_examples, "steps_per_epoch": steps,
                 "online_remix": None if sampler is None else {
                     "sources": str(sampler.store.path), "songs": len(sampler.store),
                     "minutes": round(sampler.store.seconds() / 60, 1), "params": sampler.store.params,
                     "recipe": vars(sampler.config)}},
        "hardware": {"precision": precision, "jit": jit, "eager": args.eager, "distribute": args.distribute, **runs.device_info()},
        "versions": runs.versions(), "git_commit": runs.git_commit(), "seed": args.seed,
        "teacher": cfg.teacher.describe() if cfg.teacher is not None else None,
    })
    config.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S"))
    runs.write_json(run_dir / "config.json", config)

    keras.mixed_precision.set_global_policy(precision)
    strategy = strategy or make_strategy(args.distribute)
    config["hardware"]["replicas"] = strategy.num_replicas_in_sync if strategy else 1
    runs.write_json(run_dir / "config.json", config)
    import contextlib
    with strategy.scope() if strategy else contextlib.nullcontext():
        if resuming:
            losses.register()              # a resume.keras that names the SDR loss loads
            net = keras.models.load_model(resume_file)
        else:
            net = model_lib.build_unet(args.base_filters, args.arch, args.target, dropout=args.dropout)
            if args.init_from:
                config["init_from"] = init_from(net, args.init_from, args.seed)
                runs.write_json(run_dir / "config.json", config)
            if args.freeze_batchnorm:
                print(f"train: {model_lib.freeze_batchnorm(net)} BatchNormalization layers frozen", flush=True)
            lr = args.lr if args.lr_schedule == "constant" else \
                keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=epochs * steps, alpha=0.01)
            loss = losses.get(args.loss, args.norm, args.scaler, len(targets.sources(args.target)))
            optimizer = keras.optimizers.Adam(lr, global_clipnorm=args.clipnorm or None)
            net.compile(optimizer=optimizer, loss=loss, jit_compile=jit, run_eagerly=args.eager)
        if resuming:
            net.jit_compile, net.run_eagerly = jit, args.eager

    best_so_far = config.get("state", {}).get("best_val_loss")
    callbacks = [
        keras.callbacks.ModelCheckpoint(run_dir / "best.weights.h5", monitor="val_loss", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best_so_far),
        keras.callbacks.CSVLogger(run_dir / "history.csv", append=resuming),
        runs.EpochState(run_dir, config).callback,
    ]
    if args.reduce_lr_on_plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, verbose=1))
    if args.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.early_stopping))
    time_limit = TimeLimit(args.time_limit * 60) if args.time_limit else None
    if time_limit:
        callbacks.append(time_limit)

    import progress
    if args.verbose:
        callbacks.append(progress.TrainingProgress(epochs, initial_epoch, steps, args.batch_size,
                                                   -(-len(valid_store) // args.batch_size), bar=args.verbose == 1).callback)
    if not config["hardware"]["gpus"] and args.base_filters >= PAPER_SIZE_FILTERS:
        print(f"train: warning: the paper-size model ({args.base_filters} base filters, {net.count_params() / 1e6:.1f} M "
              f"parameters) on a CPU runs for hours to days (estimate below); the CPU-size run of this "
              f"configuration is: python train.py {cpu_size_command(args)}", file=sys.stderr, flush=True)
    total_steps = (epochs - initial_epoch) * steps
    if args.scaler in ("minmax", "max") and args.loss == "mae" and total_steps < PLATEAU_STEPS:
        print(f"train: note: {args.scaler} scaling with MAE sits on a plateau (each window's best constant, "
              f"near-silence) for about its first 600 optimizer steps and learned after 2,432 here "
              f"(results/collapse_controlled.md); this run has {total_steps}: --epochs "
              f"{initial_epoch + -(-PLATEAU_STEPS // steps)} (or no --epochs: the default length) leaves it",
              file=sys.stderr, flush=True)
    if hardware.keras_backend() == "tensorflow":
        train_ds = pipeline.remix_dataset(sampler, cfg, epochs, steps, initial_epoch) if sampler else \
            pipeline.train_dataset(train_store, cfg, epochs, initial_epoch, steps)
        valid_ds = pipeline.eval_dataset(valid_store, cfg)
    else:       # the same batches through keras.utils.PyDataset: no TensorFlow needed
        train_ds = pipeline.numpy_train_dataset(sampler or train_store, cfg, steps, initial_epoch)
        valid_ds = pipeline.numpy_eval_dataset(valid_store, cfg)
    source = (f"online remixes of {len(sampler.store)} songs' stems ({sampler.store.seconds() / 60:.0f} min)" if sampler
              else f"{train_store.n_songs} train songs ({len(train_store)} windows)")
    print(f"train: {run_dir.name}: {source} -> "
          f"{n_examples} examples/epoch, {steps} steps of {args.batch_size}), {valid_store.n_songs} validation "
          f"songs ({len(valid_store)} windows); {net.count_params():,} parameters; {precision}, "
          f"jit {'on' if jit else 'off'}; epochs {initial_epoch + 1}..{epochs}"
          f"{'' if args.epochs is not None else f' ({epochs * steps:,} steps: the default length)'}", flush=True)
    started = time.time()
    interrupted = False
    try:
        net.fit(train_ds, validation_data=valid_ds, epochs=epochs, initial_epoch=initial_epoch,
                steps_per_epoch=steps, callbacks=callbacks, verbose=0, shuffle=False)
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
        "completed_epochs": done, "train_seconds": state.get("train_seconds", 0.0),
        "examples_per_second": (trained_epochs * steps * args.batch_size / elapsed) if trained_epochs else None,
        "mixture_val_loss": mixture_baseline(valid_ds, net.loss, args.target),
    })
    stopped_early = not interrupted and done < epochs
    config["status"] = "interrupted" if interrupted else "complete"
    if stopped_early:
        results["stopped_early_at_epoch"] = done
        if time_limit and time_limit.stopped:
            results["stopped_by"] = f"--time-limit {args.time_limit:g}"
    config["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    runs.write_json(run_dir / "config.json", config)
    runs.plot_curves([run_dir], run_dir / "training_curves.png", run_dir.name)
    if interrupted:
        print(f"\ntrain: interrupted during epoch {done + 1}; epochs 1..{done} are saved in {run_dir}; "
              f"continue with the same command plus --resume")
        raise SystemExit(130)
    eps = results["examples_per_second"]
    print(f"train: {run_dir.name}: best val_loss {results['best_val_loss']:.5g} at epoch {results['best_epoch']} "
          f"(predicting the mixture: {results['mixture_val_loss']:.5g}); {trained_epochs} epoch(s) in {elapsed:.0f} s"
          f"{f', {eps:.3g} examples/s' if eps else ''} -> {run_dir}")
    return config


def TimeLimit(seconds: float):
    """Keras callback: stop training after the epoch past which the next one would end over `seconds`."""
    import keras

    class _TimeLimit(keras.callbacks.Callback):
        stopped = False

        def on_train_begin(self, logs=None):
            self.started = self.epoch_started = time.time()
            self.first_epoch = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.time()
            self.first_epoch = epoch if self.first_epoch is None else self.first_epoch

        def on_epoch_end(self, epoch, logs=None):
            now = time.time()
            # The first epoch's time includes building and compiling the model: no guide to the next.
            next_epoch = now - self.epoch_started if epoch > self.first_epoch else 0.0
            if now + next_epoch - self.started > seconds:
                print(f"train: --time-limit: stopping after epoch {epoch + 1} "
                      f"({(now - self.started) / 60:.1f} of {seconds / 60:g} min used)", flush=True)
                self.model.stop_training = self.stopped = True

    return _TimeLimit()


def init_from(net, run_dir: Path, seed: int = 0) -> dict:
    """Copy a trained run's layers into `net` by layer name; returns what was copied.

    Equal shapes are copied whole; where only the last (output-channel) dimension grew, the old
    channels fill the first ones and the new channels keep their fresh initialization. A run of the
    same architecture and output with fewer base filters (a divisor of `net`'s) is grown into
    `net` function-preserving (model.widen_from, Net2WiderNet): training starts where it ended.
    """
    try:
        old, old_config = runs.load_run(run_dir)
    except runs.RunError as exc:
        raise SystemExit(f"train: --init-from: {exc}")
    if "ensemble" in old_config:
        raise SystemExit(f"train: --init-from: {run_dir} is an ensemble of runs (bench/ensemble.py); "
                         "start from one of its members")
    import model as model_lib
    (old_arch, old_base, old_target), (arch, new_base, target) = model_lib.unet_spec(old), model_lib.unet_spec(net)
    if (old_arch, old_target) == (arch, target) and old_base < new_base and new_base % old_base == 0:
        filled = model_lib.widen_from(old, net, WIDEN_NOISE, seed)
        print(f"train: initialized from {run_dir} ({old_config.get('name', '?')}): base {old_base} grown to "
              f"{new_base} function-preserving ({filled} layers, noise {WIDEN_NOISE})", flush=True)
        return {"run": str(run_dir), "name": old_config.get("name"), "widened_from_base": old_base,
                "widen_noise": WIDEN_NOISE, "copied": filled, "widened": [], "fresh": []}
    old_layers = {layer.name: layer for layer in old.layers}
    copied, widened, fresh = [], [], []
    for layer in net.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        source = old_layers.get(layer.name)
        source_weights = source.get_weights() if source is not None else []
        if [w.shape for w in source_weights] == [w.shape for w in weights]:
            layer.set_weights(source_weights)
            copied.append(layer.name)
        elif len(source_weights) == len(weights) and all(
                s.shape[:-1] == w.shape[:-1] and s.shape[-1] <= w.shape[-1] for s, w in zip(source_weights, weights)):
            for s, w in zip(source_weights, weights):
                w[..., :s.shape[-1]] = s
            layer.set_weights(weights)
            widened.append(layer.name)
        else:
            fresh.append(layer.name)
    print(f"train: initialized from {run_dir} ({old_config.get('name', '?')}): {len(copied)} layers copied"
          + (f", {', '.join(widened)} widened" if widened else "") + (f", {', '.join(fresh)} fresh" if fresh else ""),
          flush=True)
    return {"run": str(run_dir), "name": old_config.get("name"), "copied": len(copied), "widened": widened,
            "fresh": fresh}


def default_epochs(steps_per_epoch: int) -> int:
    """The paper's epoch count, raised until the run makes PLATEAU_STEPS optimizer steps."""
    return max(PAPER_EPOCHS, -(-PLATEAU_STEPS // steps_per_epoch))


def cpu_size_command(args) -> str:
    """The user's configuration at CPU size: same Table I row and data, a base-8 model."""
    parts = [f"--norm {args.norm}", f"--scaler {args.scaler}", f"--loss {args.loss}"]
    if args.data != ["data/prepared"]:
        parts.append("--data " + " ".join(str(d) for d in args.data))
    if args.target != "direct":
        parts.append(f"--target {args.target}")
    # no --epochs: the default length (at least PLATEAU_STEPS steps) is what lets the Min/Max rows learn
    return " ".join(parts + ["--base-filters 8 --batch-size 16"])


def mixture_baseline(valid_ds, loss, target: str) -> float:
    """Validation loss of the trivial estimate that leaves the mixture as it is (targets.trivial_output).

    Args:
        loss: the compiled loss: a Keras name ("mae", "mse") or a losses.py object.
    """
    import keras
    import numpy as np

    import targets
    per_example = loss.call if hasattr(loss, "call") else keras.losses.get(loss)
    total, count = 0.0, 0
    batches = (valid_ds[i] for i in range(len(valid_ds))) if isinstance(valid_ds, keras.utils.PyDataset) else valid_ds
    for x, y in batches:
        trivial = targets.trivial_output(np.asarray(x), target)
        values = np.asarray(per_example(np.asarray(y), trivial.astype(np.float32)))
        total += float(values.reshape(len(trivial), -1).mean(axis=1).sum())
        count += len(trivial)
    return total / max(count, 1)


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lr_schedule != "constant" and args.reduce_lr_on_plateau:
        parser.error("--reduce-lr-on-plateau cannot change a --lr-schedule; use one of them")
    if args.eager and args.jit == "on":
        parser.error("--eager runs no graph, so there is nothing to compile: drop --jit on")
    hardware.configure_tensorflow()
    import scratch
    scratch.handle_termination()        # SIGTERM saves and stops like Ctrl-C
    import keras
    keras.utils.set_random_seed(args.seed)
    if not args.grid:
        train_one(args)
        return
    if args.run_dir:
        raise SystemExit("train: --grid names its runs itself; use --runs-root and --tag instead of --run-dir")
    summary = []
    for norm, scaler, loss in GRID:
        run_args = argparse.Namespace(**{**vars(args), "norm": norm, "scaler": scaler, "loss": loss})
        run_args.resume = args.resume or (args.runs_root / runs.run_name(run_args) / "resume.keras").exists()
        keras.backend.clear_session()
        keras.utils.set_random_seed(args.seed)
        config = train_one(run_args)
        summary.append((config["name"], config.get("results", {}).get("best_val_loss")))
    print("train: grid done: " + ", ".join(f"{n} {v:.4g}" for n, v in summary if v is not None))


if __name__ == "__main__":
    main()
