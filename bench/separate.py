"""separate.py speed and memory: a 3-minute stereo 44.1 kHz song, and a 60-minute file.

    python bench/separate.py                                     # shipped model, every backend; paper (base 64) model
    python bench/separate.py --backends onnx --skip paper long   # one backend, quickly
    python bench/separate.py --backends onnx --skip paper long --input m4a --decoders pyav ffmpeg

Two times per model and backend: decode to written files (separate.py's own summary line:
reading, STFTs, model, iSTFTs, writing), and the whole command `python separate.py song.wav`
(plus Python start-up, imports and the model load: TensorFlow's import for --backend keras, only
onnxruntime or LiteRT for the exports); real-time factor = audio seconds / seconds. Speed does not
depend on the weights, so the paper-size model is benchmarked with random weights (keras only).
--input m4a times an AAC file (FFmpeg decodes it: PyAV in the process, or, with --decoders ffmpeg,
the ffmpeg program, PyAV hidden from separate.py). Targets (issue 11) with the shipped model: whole command <= 5 s, decode to written files >= 50x,
peak RSS <= 1 GB for the 60-minute file.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def random_run(folder: Path, base: int) -> Path:
    """A run directory holding an untrained model of the given width (for timing only)."""
    import model as model_lib
    folder.mkdir(parents=True, exist_ok=True)
    net = model_lib.build_unet(base, "paper", "direct")
    net.save_weights(folder / "best.weights.h5")
    args = {"base_filters": base, "arch": "paper", "target": "direct", "norm": "frequency", "scaler": "minmax"}
    (folder / "config.json").write_text(json.dumps({"name": f"random-base{base}", "status": "complete", "args": args}))
    return folder


def make_song(path: Path, seconds: float) -> Path:
    """A stereo 44.1 kHz song: demo songs of 20 s written back to back (streamed, low memory)."""
    import soundfile as sf
    import demo_data
    with sf.SoundFile(str(path), "w", samplerate=demo_data.DEMO_SR, channels=2, subtype="PCM_16") as f:
        piece = demo_data.synth_song(7, 20.0)["mixture"]
        written, n = 0, int(seconds * demo_data.DEMO_SR)
        while written < n:
            block = piece[:n - written]
            f.write(block)
            written += len(block)
    return path


def without_pyav(folder: Path) -> dict:
    """An environment in which `import av` fails (a stub package first on PYTHONPATH), so separate.py
    decodes with the ffmpeg program."""
    stub = folder / "no-pyav" / "av"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text("raise ImportError('PyAV hidden by bench/separate.py')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))}


def encode_m4a(wav: Path) -> Path:
    """The song as AAC in an .m4a (256 kb/s), by the ffmpeg program."""
    import subprocess
    path = wav.with_suffix(".m4a")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "256k", str(path)], check=True)
    return path


def run_separate(song: Path, run_dir: Path, out: Path, extra: list[str],
                 env: dict | None = None) -> tuple[float, int, float]:
    """(whole-command wall s, peak RSS MB, decode-to-written-files s from separate.py's summary line)."""
    import re
    from common import run_script
    wall, rss, stdout = run_script("separate.py", [str(song), "--run", str(run_dir), "--out", str(out), *extra], env)
    summary = re.search(r"of audio in ([\d.]+) s", stdout)
    if not summary:
        raise SystemExit(f"bench: separate.py printed no summary line:\n{stdout}")
    return wall, rss, float(summary.group(1))


def main() -> None:
    from separation import CHANNEL_MODES
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=None,
                   help="CPU-size run to time (default: pretrained/, else a random base-16 model)")
    p.add_argument("--minutes", type=float, default=3.0, help="length of the timed song")
    p.add_argument("--long-minutes", type=float, default=60.0, help="length of the memory-test file")
    p.add_argument("--skip", nargs="*", default=[], choices=["paper", "long"], help="parts to skip")
    p.add_argument("--band", default="full", choices=["full", "paper"], help="separate.py --band")
    p.add_argument("--backends", nargs="+", default=["openvino", "onnx", "tflite", "keras"],
                   choices=["openvino", "onnx", "tflite", "keras"],
                   help="separate.py --backend values to time with the shipped model")
    p.add_argument("--input", default="wav", choices=["wav", "m4a"], help="the timed songs' format")
    p.add_argument("--wiener", nargs="+", type=int, default=[None], metavar="N",
                   help="separate.py --wiener-iterations values to time (default: the model's own default)")
    p.add_argument("--channels", nargs="+", default=[None], choices=CHANNEL_MODES,
                   help="separate.py --channels values to time (default: the model's own default)")
    p.add_argument("--decoders", nargs="+", default=["pyav"], choices=["pyav", "ffmpeg"],
                   help="who decodes a non-libsndfile input (m4a): PyAV in the process, or the ffmpeg program")
    args = p.parse_args()
    from common import print_machine
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        song = make_song(tmp / "song.wav", args.minutes * 60)
        if args.input == "m4a":
            song = encode_m4a(song)
        envs = {"pyav": None, "ffmpeg": without_pyav(tmp)}
        shipped = ROOT / "pretrained"
        cpu_run = args.run or (shipped if (shipped / "config.json").exists() else random_run(tmp / "base16", 16))
        models = [("CPU-size", cpu_run, backend) for backend in args.backends]
        if "paper" not in args.skip:
            models.append(("paper 64-filter", random_run(tmp / "base64", 64), "keras"))
        print(f"separate.py on a {args.minutes:g}-minute stereo 44.1 kHz {args.input} song, --band {args.band}:")
        for label, run_dir, backend in models:
            for decoder, wiener, channels in itertools.product(args.decoders if args.input != "wav" else ["pyav"],
                                                               args.wiener, args.channels):
                post = [] if wiener is None else ["--wiener-iterations", str(wiener)]
                post += [] if channels is None else ["--channels", channels]
                wall, rss, separation = run_separate(song, run_dir, tmp / "out", ["--band", args.band, "--backend",
                                                                                  backend, *post], envs[decoder])
                seconds = args.minutes * 60
                decoded_by = f", decoded by {decoder}" if args.input != "wav" else ""
                post_filter = ("" if wiener is None else f", --wiener-iterations {wiener}") + \
                    ("" if channels is None else f", --channels {channels}")
                print(f"  {label:16s} ({Path(run_dir).name}, {backend:6s}{decoded_by}{post_filter}): decode to written files "
                      f"{separation:5.1f} s = {seconds / separation:5.1f}x real time; whole command {wall:5.1f} s = "
                      f"{seconds / wall:5.1f}x; peak RSS {rss} MB", flush=True)
        if "long" not in args.skip:
            long_song = make_song(tmp / "long.wav", args.long_minutes * 60)
            if args.input == "m4a":            # decoded in memory up to IN_MEMORY_BYTES, then to scratch
                long_song = encode_m4a(long_song)
            label, run_dir, backend = models[0]
            wall, rss, _ = run_separate(long_song, run_dir, tmp / "out", ["--band", args.band, "--backend", backend])
            print(f"  {args.long_minutes:g}-minute file, {label} ({backend}): peak RSS {rss} MB (target <= 1024), "
                  f"{wall:.0f} s wall = {args.long_minutes * 60 / wall:.1f}x real time", flush=True)


if __name__ == "__main__":
    main()
