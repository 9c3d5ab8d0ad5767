"""Separate any song into vocals and accompaniment.

    python separate.py song.mp3                                   # -> separated/song/{vocals,accompaniment}.wav
    python separate.py a.flac b.m4a --format mp3 --out karaoke/
    python separate.py song.wav --run results/runs/frequency-minmax-mae --band paper

Input: whatever libsndfile or ffmpeg reads, any sample rate, any channel count, any length.
The model works in the paper's domain (mono, 11025 Hz, 512 bins). With --band full (default)
its estimate becomes a mask vocal / mixture that is interpolated onto each input channel's own
STFT (same bin spacing and hop in seconds as the model's grid), so the output keeps the input's
sample rate, channels and stereo image; above 5.5 kHz, where the model sees nothing, the mask is
extended by --mask-extension (default "average": each frame's mean mask over 2.75-5.5 kHz).
--band paper writes the paper's own 11025 Hz mono reconstruction.

This is the command line only; the work is done by separation.Separator (the library API).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import audio
import hardware
import runs
import scratch
from separation import (BACKENDS, BANDS, CHANNEL_MODES, DEFAULT_CHANNELS, DEFAULT_TEMPLATE,
                        DEFAULT_WIENER_ITERATIONS, EXTENSIONS, FORMATS, MAX_WIENER_ITERATIONS, SPEED_RANGE, Separator,
                        check_speeds)


def _number(kind, minimum: float, inclusive: bool):
    """argparse type: a number of `kind` >= minimum (or > minimum), checked when arguments are parsed."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}")
        if value < minimum or (value == minimum and not inclusive) or value != value:
            raise argparse.ArgumentTypeError(f"{text} must be {'at least' if inclusive else 'more than'} {minimum:g}")
        return value
    return parse


def _speed(text: str) -> float:
    """argparse type: a test-time speed within SPEED_RANGE."""
    value = _number(float, 0, False)(text)
    if not SPEED_RANGE[0] <= value <= SPEED_RANGE[1]:
        raise argparse.ArgumentTypeError(f"speed {text} is outside {SPEED_RANGE[0]}..{SPEED_RANGE[1]} (about +-4 semitones)")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None (the help text says what happens then)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Separate songs into vocals and accompaniment. The work is done by "
                                            "separation.Separator; see README for the Python API.",
                                formatter_class=_HelpFormatter)
    p.add_argument("songs", nargs="+", type=Path, help="audio files (mp3, wav, flac, ogg, m4a, ...)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", choices=sorted(runs.SHIPPED_MODELS), default=None,
                       help="a shipped model: fast = pretrained/ (the default), quality = pretrained/quality/ "
                            "(larger: better vocals, slower; README, Results)")
    which.add_argument("--run", type=Path, default=None,
                       help="run directory with config.json and best.weights.h5 (default: pretrained/, "
                            "else the newest complete run in results/runs)")
    p.add_argument("--out", type=Path, default=Path("separated"), help="output folder")
    p.add_argument("--format", choices=sorted(FORMATS), default="wav", help="output format")
    p.add_argument("--filename-format", default=DEFAULT_TEMPLATE,
                   help="output path template under --out; fields {filename}, {foldername}, {instrument}, {codec}")
    p.add_argument("--offset", type=_number(float, 0, True), default=0.0, help="start this many seconds into each song")
    p.add_argument("--duration", type=_number(float, 0, False), default=None,
                   help="separate at most this many seconds (default: to the end)")
    p.add_argument("--band", choices=BANDS, default="full",
                   help="full: input rate and channels, model mask on each channel's STFT; paper: 11025 Hz mono")
    p.add_argument("--mask-extension", choices=EXTENSIONS, default="average",
                   help="mask above 5.5 kHz for --band full: average = each frame's mean over 2.75-5.5 kHz, "
                        "zeros = no vocals up there, top = each frame's mask at 5.5 kHz carried upward")
    p.add_argument("--phase", choices=audio.PHASES, default="mixture",
                   help="vocal phase: the mixture's (the paper) or estimated by Griffin-Lim (report 001; "
                        f"{audio.GRIFFIN_LIM_ITERATIONS} iterations, slower, scored in README)")
    p.add_argument("--wiener-iterations", type=int, choices=range(MAX_WIENER_ITERATIONS + 1),
                   default=None, metavar="N",
                   help="post-filter: 0 = the model's soft masks; N = norbert's multichannel Wiener filter with N EM "
                        f"iterations (0..{MAX_WIENER_ITERATIONS}); default {DEFAULT_WIENER_ITERATIONS} for two-source "
                        "models such as the shipped one, 0 for vocals-only ones (README)")
    p.add_argument("--channels", choices=CHANNEL_MODES, default=None,
                   help="what the model hears of a stereo song (--band full): each channel on its own, a mask per "
                        "channel (better vocals, about 1.5x the time; README); the channels' mix, one mask for all "
                        "(the paper's input, fastest); or both, each channel's estimate averaged with the mix's "
                        f"(slowest). Default: the model's own recorded choice (fast: mix; quality: each), else "
                        f"{DEFAULT_CHANNELS}")
    p.add_argument("--speeds", type=_speed, nargs="+", default=None, metavar="S",
                   help="test-time augmentation: the model also hears the song played S times as fast (like a tape: "
                        "pitch and tempo), the estimates mapped back and averaged; must include 1, e.g. 1 0.944 1.059 "
                        "(-1..+1 semitone: better vocals, 3x the model's time; README); given here, they apply to every "
                        "input. Default: the model's own recorded choice (both shipped models: 1 0.944 1.059 for "
                        "mono songs; the quality model also with --channels mix)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="what runs the model: openvino (OpenVINO, bfloat16 on CPUs that have it), onnx (onnxruntime) "
                        "or tflite (LiteRT) run the run's export without TensorFlow (python export.py RUN); keras "
                        "needs TensorFlow; auto = the fastest installed: openvino first on CPUs with bfloat16 (AMX, AVX512-BF16), "
                        "onnx first elsewhere, then tflite, then keras")
    p.add_argument("--chunk-windows", type=_number(int, 1, True), default=20, help="model windows (2.97 s each) per chunk")
    p.add_argument("--batch-size", type=_number(int, 1, True), default=8, help="model windows per forward pass")
    return p


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.speeds:
        try:
            check_speeds(args.speeds)
        except ValueError as exc:
            parser.error(f"--{exc}")
    scratch.handle_termination()
    try:
        separate_all(args)
    except KeyboardInterrupt as exc:          # Ctrl-C or SIGTERM: the unfinished stems are already removed
        scratch.remove_scratch()
        signal = "SIGTERM" if isinstance(exc, scratch.Terminated) else "interrupted"
        print(f"\nseparate: stopped ({signal}); unfinished stems removed, finished ones kept in {args.out}",
              file=sys.stderr)
        raise SystemExit(143 if signal == "SIGTERM" else 130)


def separate_all(args) -> None:
    # Keras imports scikit-learn (0.6-1.3 s of start-up here) only for its sklearn wrappers, which
    # separating never uses; a module set to None makes that optional import fail fast.
    sys.modules.setdefault("sklearn", None)
    hardware.configure_tensorflow()
    try:
        run_dir = runs.shipped_model(args.model) if args.model else args.run or runs.default_run()
        separator = Separator.from_run(run_dir, args.band, args.mask_extension,
                                       args.chunk_windows, args.batch_size, args.backend, args.phase,
                                       args.wiener_iterations, args.channels, args.speeds)
    except (runs.RunError, ValueError) as exc:      # no model, or a setting it cannot take
        raise SystemExit(f"separate: {exc}")
    print(f"separate: model {separator.run_dir} ({separator.backend})", file=sys.stderr)
    started, done, failed, seconds = time.time(), 0, 0, 0.0
    for song in args.songs:
        t0 = time.time()
        try:
            paths = separator.separate_to_file(song, args.out, args.filename_format, args.format,
                                               args.offset, args.duration, progress_bar=True,
                                               on_warning=lambda text: print(f"separate: warning: {text}", file=sys.stderr))
        except audio.AudioError as exc:
            print(f"separate: skipped {exc}", file=sys.stderr)
            failed += 1
            continue
        except Exception as exc:       # never let one file stop the batch; name it and go on
            print(f"separate: skipped {song}: unexpected {type(exc).__name__} ({str(exc).splitlines()[0][:200] if str(exc) else 'no message'}); "
                  "please report it with the file", file=sys.stderr)
            failed += 1
            continue
        import soundfile as sf
        length = sf.info(str(paths["vocals"])).duration
        seconds += length
        done += 1
        print(f"separate: {song} -> {paths['vocals']}, {paths['accompaniment']} "
              f"({length:.1f} s in {time.time() - t0:.1f} s)", file=sys.stderr)
    wall = time.time() - started
    print(f"separate: {done} song(s) separated, {failed} failed; {seconds:.0f} s of audio in {wall:.1f} s "
          f"({seconds / wall if wall else 0:.1f}x real time) -> {args.out}")
    if failed:
        raise SystemExit(1)


def run_as_command(argv=None) -> None:
    """main() as the command: a stopped run (Ctrl-C, SIGTERM), once its clean-up is done, exits without
    the interpreter's teardown, where a runtime's worker threads stopped mid-operation could crash
    the process (SIGSEGV instead of exit status 143, seen under load)."""
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code in (130, 143):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.code)
        raise


if __name__ == "__main__":
    run_as_command()
