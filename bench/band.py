"""Which output rule scores better at 44.1 kHz stereo: full band with each mask extension, or paper band?

    python bench/band.py --run results/runs/frequency-minmax-mae-cpu16

For each MUSDB18 test stem file: separate the mixture with separation.SongSeparator (--band
full and each --mask-extension), then score vocals and accompaniment with museval (BSSEval v4,
1 s windows) against the true stereo 44.1 kHz stems (accompaniment = drums + bass + other).
--band paper is scored after upsampling its 11025 Hz mono output to 44.1 kHz stereo. Median over
frames, then over songs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
RULES = [("full", "average"), ("full", "zeros"), ("full", "top"), ("paper", None)]


def score_song(task):
    import museval
    references, estimates = task
    sdr, _, sir, sar = museval.evaluate(references, estimates, win=44100, hop=44100)
    return [[float(np.nanmedian(m[i])) for m in (sdr, sir, sar)] for i in range(2)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="trained run directory")
    p.add_argument("--musdb-test", type=Path, default=ROOT.parent / "shared" / "data" / "musdb18-7" / "test",
                   help="folder of MUSDB18 test *.stem.mp4 files")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="songs scored in parallel")
    args = p.parse_args()
    from common import print_machine
    print_machine()
    import soundfile as sf
    import stempeg
    from tqdm import tqdm

    import audio
    from parallel import parallel_map
    from separation import AudioSource, SongSeparator, WindowModel
    separator = WindowModel.from_run(args.run)
    files = sorted(args.musdb_test.glob("*.stem.mp4"))
    tasks = {rule: [] for rule in RULES}
    with tempfile.TemporaryDirectory() as tmp:
        for path in tqdm(files, desc="separating", file=sys.stderr):
            stems, rate = stempeg.read_stems(str(path), ffmpeg_format="f32le")
            mixture, vocals, accomp = stems[0], stems[4], stems[1] + stems[2] + stems[3]
            wav = Path(tmp) / "mix.wav"
            sf.write(wav, mixture, int(rate), subtype="FLOAT")
            references = np.stack([vocals, accomp]).astype(np.float64)
            for band, extension in RULES:
                blocks = []
                SongSeparator(separator, band, extension=extension or "average").run(
                    AudioSource(wav), lambda v, a: blocks.append(v))
                est = np.concatenate(blocks)
                if band == "paper":          # 11025 Hz mono -> the stems' rate and channels
                    est = np.repeat(audio.resample(est[:, 0], audio.SAMPLE_RATE, int(rate))[:, None], 2, axis=1)
                n = min(len(est), len(mixture))
                est_v = np.zeros_like(vocals)
                est_v[:n] = est[:n]
                estimates = np.stack([est_v, mixture - est_v]).astype(np.float64)
                tasks[(band, extension)].append((references, estimates))
    print(f"vocals / accompaniment at 44.1 kHz stereo, {len(files)} MUSDB18 test songs, model {args.run.name}:")
    print(f"  {'rule':38s} vocals SDR   SIR   SAR | accomp. SDR   SIR   SAR")
    for rule in RULES:
        scores = np.array(list(parallel_map(score_song, tasks[rule], args.jobs, processes=True)))
        med = np.nanmedian(scores, axis=0)
        label = f"--band {rule[0]}" + (f" --mask-extension {rule[1]}" if rule[1] else "")
        print(f"  {label:38s} {med[0, 0]:10.2f} {med[0, 1]:5.2f} {med[0, 2]:5.2f} | {med[1, 0]:11.2f} "
              f"{med[1, 1]:5.2f} {med[1, 2]:5.2f}", flush=True)


if __name__ == "__main__":
    main()
