"""Copy a chosen run into a shipped model folder (runs.SHIPPED_MODELS: pretrained/, pretrained/quality/).

    python bench/ship.py results/runs-select/RUN --to pretrained/quality
    python export.py pretrained/quality                    # its ONNX graph, for the TensorFlow-free path

What is copied: config.json (with --wiener-iterations, --channels, --speeds and --speeds-when, the model's own defaults for
separation, chosen on the validation songs), history.csv and training_curves.png where the run has them, and
best.weights.h5 with the model's weights only (train.py's checkpoint also holds Adam's two moments,
3x the size; an ensemble's members keep their own). Each file is written beside its destination and
renamed into place, so an interrupted copy leaves the old file or the new one. Shipping a folder
onto itself (`bench/ship.py pretrained --to pretrained --channels mix`) only rewrites those defaults
in its config.json, so its weights and exports stay as they are. The folder's
MODEL_CARD.md is written by hand and left as it is; a stale export (model.onnx, model.tflite made
from other weights) is removed with its record, since separate.py would refuse it anyway.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import runs  # noqa: E402


def separation_defaults(config: dict, wiener_iterations: int | None, channels: str | None,
                        speeds: list[float] | None = None, speeds_when: str | None = None) -> dict:
    """config with the given separation defaults recorded (None: the setting is left as it is)."""
    chosen = {"wiener_iterations": wiener_iterations, "channels": channels, "speeds": speeds,
              "speeds_when": speeds_when}
    recorded = {**config.get("separation", {}), **{k: v for k, v in chosen.items() if v is not None}}
    if recorded:
        config["separation"] = recorded
    return config


def ship(run_dir: Path, to: Path, wiener_iterations: int | None = None, channels: str | None = None,
         speeds: list[float] | None = None, speeds_when: str | None = None) -> list[str]:
    """Copy run_dir's model into the folder `to`; returns the names of the files written.

    Args:
        run_dir: a complete run folder.
        to: the shipped model's folder (made if missing).
        wiener_iterations: the model's own default post-filter, measured on the validation songs
            (recorded in its config.json; separation.default_wiener_iterations reads it). None: the
            generic default for its kind of model.
        channels: what the model hears of a stereo song by default (separation.CHANNEL_MODES; read by
            separation.default_channels). None: separation.DEFAULT_CHANNELS.
        speeds: the model's default test-time speeds (separation.default_speeds). None: 1 alone.
        speeds_when: when they apply (separation.SPEEDS_WHEN). None: always.
    """
    import separation
    if not runs.is_complete_run(run_dir):
        raise SystemExit(f"ship: {run_dir} is not a complete run (config.json with best.weights.h5)")
    if to.exists() and to.resolve() == run_dir.resolve():      # only the recorded defaults change
        runs.write_json(to / "config.json", separation_defaults(runs.read_config(to), wiener_iterations, channels, speeds,
                                                                  speeds_when))
        return ["config.json"]
    to.mkdir(parents=True, exist_ok=True)
    written = []
    runs.copy_model_weights(run_dir / "best.weights.h5", to / "best.weights.h5")
    written.append("best.weights.h5")
    config = runs.derived_config(run_dir)   # a run's defaults are chosen again for each shipped copy
    runs.write_json(to / "config.json", separation_defaults(config, wiener_iterations, channels, speeds, speeds_when))
    written.append("config.json")
    for name in ("history.csv", "training_curves.png"):
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, to / (name + ".partial"))
            os.replace(to / (name + ".partial"), to / name)
            written.append(name)
    stale = [b for b in separation.EXPORT_FILES if separation.current_export(to, b) is None]
    for backend in stale:                                      # exports of the old weights go
        (to / separation.EXPORT_FILES[backend]).unlink(missing_ok=True)
    if len(stale) == len(separation.EXPORT_FILES):
        (to / separation.EXPORT_RECORD).unlink(missing_ok=True)
    return written


def main() -> None:
    import separation
    from separation import CHANNEL_MODES
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a complete run folder")
    p.add_argument("--to", type=Path, required=True, help="the shipped model's folder, e.g. pretrained/quality")
    p.add_argument("--wiener-iterations", type=int, choices=range(4), default=None,
                   help="the model's default post-filter, as chosen on the validation songs (default: the generic "
                        "one, 1 for two-source models)")
    p.add_argument("--channels", choices=CHANNEL_MODES, default=None,
                   help="what the model hears of a stereo song by default, as chosen on the validation songs "
                        "(default: separation.DEFAULT_CHANNELS)")
    p.add_argument("--speeds", type=float, nargs="+", default=None, metavar="S",
                   help="the model's default test-time speeds (separate.py --speeds), as chosen on the validation "
                        "songs; must include 1 (default: 1 alone)")
    p.add_argument("--speeds-when", choices=separation.SPEEDS_WHEN, default=None,
                   help="where the default speeds apply: always; one-input (mono songs and the channels' mix, "
                        "not each channel of a stereo song); mono (mono songs only). Default: always")
    args = p.parse_args()
    if args.speeds:
        try:
            separation.check_speeds(args.speeds)
        except ValueError as exc:
            p.error(f"--speeds: {exc}")
    written = ship(args.run, args.to, args.wiener_iterations, args.channels, args.speeds, args.speeds_when)
    if "best.weights.h5" not in written:
        print(f"ship: {args.to}: separation defaults now {runs.read_config(args.to).get('separation', {})}")
    else:
        print(f"ship: {args.run} -> {args.to} ({', '.join(written)}); now: python export.py {args.to}")


if __name__ == "__main__":
    main()
