"""The run directory: finding, validating, loading and writing what train.py leaves behind.

A run folder holds config.json (arguments, data fingerprints, versions, git commit, hardware,
state and results), best.weights.h5 / last.weights.h5, resume.keras, history.csv and
training_curves.png. Every other module reads a run through this one: the arguments that
rebuild and use its model come back as a `RunSettings` with named fields, never as loose
config["args"][...] strings.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RUNS_ROOT = ROOT / "results" / "runs"
PRETRAINED = ROOT / "pretrained"
# the shipped models: the default and a larger, slower one (each with its model card)
SHIPPED_MODELS = {"fast": PRETRAINED, "quality": PRETRAINED / "quality"}


class RunError(FileNotFoundError):
    """A run folder that cannot be used (most often a file of it is missing); the message names it
    and says what to do."""


@dataclass(frozen=True)
class RunSettings:
    """The arguments of a run that decide how its model is built, fed and scored."""
    norm: str
    scaler: str
    loss: str
    arch: str
    target: str
    base_filters: int
    data: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: dict, where: str | Path = "config.json") -> "RunSettings":
        args = config.get("args", {})
        fields = [f for f in cls.__dataclass_fields__ if f != "data"]
        missing = [f for f in fields if f not in args]
        if missing:
            raise RunError(f"{where}: config.json lacks {', '.join(missing)}; is it a run written by train.py?")
        return cls(**{f: args[f] for f in fields}, data=tuple(args.get("data", ())))

    @property
    def model_label(self) -> str:
        return f"{self.arch}-{self.base_filters} {self.target}"


def run_name(args) -> str:
    """Default folder name of a run: <norm>-<scaler>-<loss>[-<tag>] (args: any object with those fields)."""
    return "-".join([args.norm, args.scaler, args.loss] + ([args.tag] if getattr(args, "tag", "") else []))


def read_config(run_dir: str | Path) -> dict:
    """A run's config.json as a dict; RunError when it is missing or unreadable."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    if not path.exists():
        raise RunError(f"{run_dir}: no config.json; is this a run directory written by train.py?")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable ({exc}); retrain the run or restore the file") from None


def settings(run_dir: str | Path) -> RunSettings:
    return RunSettings.from_config(read_config(run_dir), Path(run_dir) / "config.json")


def is_complete_run(run_dir: str | Path) -> bool:
    """True for a run folder whose training finished (config.json says so and best weights exist)."""
    run_dir = Path(run_dir)
    try:
        complete = read_config(run_dir).get("status") == "complete"
    except RunError:
        return False
    return complete and (run_dir / "best.weights.h5").exists()


def complete_runs(runs_root: str | Path) -> list[Path]:
    """The complete runs under a folder, sorted by name."""
    return sorted(d for d in Path(runs_root).glob("*") if is_complete_run(d))


def default_run() -> Path | None:
    """The shipped model (pretrained/), else the newest complete run under results/runs."""
    if (PRETRAINED / "config.json").exists():
        return PRETRAINED
    runs = complete_runs(RUNS_ROOT)
    return max(runs, key=lambda d: (d / "best.weights.h5").stat().st_mtime) if runs else None


def shipped_model(name: str) -> Path:
    """The folder of a shipped model by name (SHIPPED_MODELS), or RunError naming what is there."""
    if name not in SHIPPED_MODELS:
        raise RunError(f"no shipped model {name!r}; choose one of {', '.join(SHIPPED_MODELS)}")
    folder = SHIPPED_MODELS[name]
    if not (folder / "config.json").exists():
        present = shipped_models()
        raise RunError(f"{folder}: the {name!r} model is not in this checkout (present: {', '.join(present) or 'none'}); "
                       "git pull, or pass --run RUN")
    return folder


def shipped_models() -> dict[str, Path]:
    """The shipped models present in this checkout, by name."""
    return {n: d for n, d in SHIPPED_MODELS.items() if (d / "config.json").exists()}


def weights_file(run_dir: str | Path, weights: str = "best") -> Path:
    """RUN/<weights>.weights.h5, or RunError saying how to make it."""
    path = Path(run_dir) / f"{weights}.weights.h5"
    if not path.exists():
        raise RunError(f"{run_dir}: no {path.name}; train it (python train.py ...) or finish it with --resume")
    return path


def build_run_model(run_dir: str | Path):
    """(the untrained model config.json describes, built in float32 whatever the run trained in, config)."""
    import keras

    import model as model_lib
    config = read_config(run_dir)
    s = RunSettings.from_config(config, Path(run_dir) / "config.json")
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")      # inference and export: float32 whatever trained
    try:
        if "ensemble" in config:           # bench/ensemble.py: the members' mean in one model
            members = [(m["base_filters"], m["arch"]) for m in config["ensemble"]["members"]]
            return model_lib.build_ensemble(members, s.target), config
        return model_lib.build_unet(s.base_filters, s.arch, s.target), config
    finally:
        keras.mixed_precision.set_global_policy(policy)


def load_run(run_dir: str | Path, weights: str = "best"):
    """Rebuild a trained model from its run directory.

    Args:
        run_dir: a folder written by train.py (config.json + *.weights.h5).
        weights: "best" or "last".
    Returns:
        (model, config) where config is the run's config.json as a dict.
    """
    run_dir = Path(run_dir)
    read_config(run_dir)                      # a missing config is the first thing to report
    weights_path = weights_file(run_dir, weights)
    net, config = build_run_model(run_dir)
    try:
        net.load_weights(weights_path)
    except (OSError, ValueError) as exc:
        raise RunError(f"{weights_path}: cannot be loaded into the model config.json describes "
                       f"({str(exc).splitlines()[0][:120]}); retrain the run") from None
    return net, config


# ---------------------------------------------------------------- writing
MODEL_GROUPS = ("layers", "vars")          # a .weights.h5 file's model part; "optimizer" is left behind


def copy_model_weights(source: Path, target: Path) -> None:
    """source's .weights.h5 without optimizer state (train.py's checkpoints also hold Adam's two
    moments, 3x the size), written to target through target.partial."""
    import h5py
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    try:
        with h5py.File(source, "r") as src, h5py.File(partial, "w") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for group in MODEL_GROUPS:
                if group in src:
                    src.copy(src[group], dst, name=group)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def derived_config(run_dir: str | Path) -> dict:
    """run_dir's config as the start of another run's (a soup, an ensemble, recomputed statistics, a
    shipped copy): without "separation", the defaults measured for one shipped model (bench/ship.py)."""
    config = read_config(run_dir)
    config.pop("separation", None)
    return config


@contextlib.contextmanager
def derived_run(out: Path, tool: str):
    """The folder of a run a tool derives from others (a soup, an ensemble, recomputed statistics):
    yields OUT.partial to fill; renamed to OUT when the block ends, removed if it raises, so no
    half-made run folder is left. SystemExit naming the tool if OUT exists."""
    out = Path(out)
    if out.exists():
        raise SystemExit(f"{tool}: {out} exists; choose another --out or remove it")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(out)


class RunLock:
    """An exclusive lock on a run folder (flock on RUN/.lock, holding the owner's PID), so a second
    train.py on the same folder stops with one line instead of writing beside the first.
    The folder is made if needed, and removed again on exit if the run left nothing in it.

    Args:
        run_dir: the run folder.
        who: the command taking it, for the message.
    """

    def __init__(self, run_dir: Path, who: str):
        self.run_dir, self.who = Path(run_dir), who
        self.path = self.run_dir / ".lock"
        self.made = not self.run_dir.exists()
        self.file = None

    def __enter__(self) -> "RunLock":
        import fcntl
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            self.file = None
            raise SystemExit(f"{self.who}: {self.run_dir} is in use by another process (PID {holder}); wait for "
                             f"it to finish, or choose another --tag / --run-dir")
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.path.unlink(missing_ok=True)
            self.file.close()          # closing releases the flock
            self.file = None
        if self.made:
            try:
                self.run_dir.rmdir()    # only when the run wrote nothing (an early failure)
            except OSError:
                pass


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


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
    """The Keras backend, the GPUs it sees, and the CPU (model, cores, ISA flags, oneDNN state)."""
    import hardware
    cpu = hardware.cpu_info()
    return {"keras_backend": hardware.keras_backend(), "gpus": hardware.gpu_names(), "cpu": cpu["model"],
            "cores": cpu["cores"], "cpu_flags": cpu["flags"], "onednn": hardware.onednn_state()}


def versions() -> dict:
    import keras

    import hardware
    return {**hardware.backend_version(), "keras": keras.__version__, "python": sys.version.split()[0]}


class EpochState:
    """Keras callback: after each epoch, save last.weights.h5, resume.keras and the config."""

    def __init__(self, run_dir: Path, config: dict):
        import keras

        outer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.epoch_started = time.time()

            def on_epoch_end(self, epoch, logs=None):
                outer.on_epoch_end(self.model, epoch, logs or {})

        self.callback = _Callback()
        self.run_dir, self.config = run_dir, config
        self.epoch_started = time.time()

    def on_epoch_end(self, model, epoch: int, logs: dict) -> None:
        state = self.config.setdefault("state", {})
        # Training time of completed epochs, kept per epoch so a killed run's resume still counts it.
        state["train_seconds"] = state.get("train_seconds", 0.0) + time.time() - self.epoch_started
        model.save_weights(self.run_dir / "last.weights.h5")
        tmp = self.run_dir / "resume.partial.keras"
        model.save(tmp)                     # model + optimizer state, renamed only when complete
        os.replace(tmp, self.run_dir / "resume.keras")
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
    values = [float(r[k]) for _, rows in histories for r in rows for k in ("loss", "val_loss")]
    # Log scale shows MAE/MSE curves best; an SDR loss (minus dB) goes negative: symmetric log there.
    ax.set_yscale("log" if min(values) > 0 else "symlog")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
