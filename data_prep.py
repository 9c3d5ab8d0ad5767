"""Build the (n, 512, 128, 1) HDF5 caches from MUSDB18, MIR-1K or the built-in demo songs.

    python data_prep.py                                         # built-in demo dataset
    python data_prep.py --musdb-root ../shared/data/musdb18-7    # real MUSDB18 (stems or HQ wav)
    python data_prep.py --mir1k-root ../shared/data/mir-1k/Wavfile --out data/mir1k
    python data_prep.py --mir1k-extra-root ../shared/data/mir-1k-extra/Wavfile --out data/mir1k-extra --splits train
    python data_prep.py --folder-root /path/to/collection --out data/collection   # one folder per song

Per song, as in the paper: channel mean, soxr resample to 11025 Hz, STFT (1024 / 256 / Hann,
centered), bins 0..511, 128-frame windows; the last partial window is zero-padded and each
window records its `valid_frames`, so every song rebuilds to its exact length.

Output `{out}/{train,valid,test}.h5` in the format cache.py documents, written as
NAME.h5.partial and renamed when complete.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import audio
from cache import CACHE_FORMAT, CacheWriter, cache_is_current
from parallel import parallel_map

SPLITS = ("train", "valid", "test")
MUSDB_PARTS = ("drums", "bass", "other")       # accompaniment stems, MUSDB18 order 1..3
MUSDB_STEM_INDEX = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
MIR1K_TRAIN_SINGERS = ("abjones", "amy")
SILENCE_PEAK = 1e-4          # a mixture whose peak is below this is treated as silent
REMIX_GAIN = (0.25, 1.25)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".webm", ".mp4")
FOLDER_STEMS = ("mixture", "vocals", "accompaniment")     # names with a meaning in --folder-root songs
FOLDER_SPLITS = ("train", "valid", "test")              # optional split folders of --folder-root


@dataclass
class Song:
    """One song to prepare. `kind` says how to decode it."""
    name: str
    source: str                  # musdb | mir1k | demo | remix | speed
    kind: str                    # stem | wav | mir1k | folder | remix | speed
    path: str
    split: str = ""
    parts: list = field(default_factory=list)   # remix: [(stem, Song, gain, offset_fraction)]; speed: [(Song, factor)]


@dataclass
class Prepared:
    """What a worker returns for one song (or a message if it was skipped)."""
    song: Song
    message: str = ""
    arrays: dict = field(default_factory=dict)
    length: int = 0
    orig_sample_rate: int = 0
    orig_channels: int = 0


# ---------------------------------------------------------------- listing songs
def musdb_setup() -> dict:
    """The musdb package's own dataset description (validation tracks, stem ids, file names).

    Read from its mus.yaml without importing musdb: `musdb.DB` runs ffprobe on every file
    while listing (8 s for the 119 preview tracks, five probes per track for HQ wav), which
    dominated the whole preparation. Tracks are then listed exactly as musdb lists them.
    """
    import importlib.util
    import yaml
    spec = importlib.util.find_spec("musdb")
    if spec is None:
        raise SystemExit("data_prep: the musdb package is missing: pip install -r requirements.txt")
    return yaml.safe_load((Path(spec.submodule_search_locations[0]) / "configs" / "mus.yaml").read_text())


def musdb_songs(root: Path, wav: bool | None, valid_fraction: float) -> list[Song]:
    """MUSDB18 train/test tracks (stems or HQ wav folders), split into train/valid/test by song."""
    if not root.is_dir():
        raise SystemExit(f"data_prep: --musdb-root {root}: no such directory")
    if wav is None:
        wav = not any(root.glob("*/*.stem.mp4")) and any(root.glob("*/*/mixture.wav"))
    setup = musdb_setup()
    songs = []
    for subset in ("train", "test"):
        folder = root / subset
        if not folder.is_dir():
            continue
        if wav:
            found = [(d.name, d) for d in sorted(folder.iterdir()) if (d / setup["mixture"]).exists()]
        else:
            found = [(f.name[:-len(".stem.mp4")], f) for f in sorted(folder.glob("*.stem.mp4"))]
        songs += [Song(name, "musdb", "wav" if wav else "stem", str(path), subset) for name, path in found]
    if not songs:
        raise SystemExit(f"data_prep: no MUSDB18 tracks under {root}/train or {root}/test "
                         "(expected *.stem.mp4 files or MUSDB18-HQ folders with mixture.wav; see --wav)")
    if not wav:
        audio.require_ffmpeg()
    train = [s for s in songs if s.split == "train"]
    official = {s.name for s in train} & set(setup.get("validation_tracks", []))
    if official and len(official) < len(train):
        for s in train:
            s.split = "valid" if s.name in official else "train"
    else:
        assign_valid(train, valid_fraction, key=lambda s: s.name)
    return songs


def audio_files(folder: Path) -> list[Path]:
    """The audio files of a folder (any format libsndfile or ffmpeg reads, by suffix), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def mir1k_songs(root: Path, valid_fraction: float, train_only: bool = False) -> list[Song]:
    """MIR-1K clips: abjones + amy train (validation = held-out songs of theirs), others test.

    train_only: every clip is a training clip (an extra set such as mir-1k-extra: never in a
    validation or test split, so the usual test singers stay comparable with the literature).
    """
    option = "--mir1k-extra-root" if train_only else "--mir1k-root"
    if not root.is_dir():
        raise SystemExit(f"data_prep: {option} {root}: no such directory")
    files = audio_files(root)
    if not files:
        raise SystemExit(f"data_prep: no audio clips in {root} (point {option} at a MIR-1K-style Wavfile/ folder: "
                         "stereo clips, left = accompaniment, right = vocals)")
    songs = []
    for p in files:
        singer = p.stem.split("_")[0]
        split = "train" if train_only or singer in MIR1K_TRAIN_SINGERS else "test"
        songs.append(Song(p.stem, "mir1k-extra" if train_only else "mir1k", "mir1k", str(p), split))
    if train_only:
        return songs
    # Clips of one recording (singer_song_clip) stay together so validation never hears training songs.
    assign_valid([s for s in songs if s.split == "train"], valid_fraction,
                 key=lambda s: "_".join(s.name.split("_")[:2]))
    return songs


def folder_songs(root: Path, valid_fraction: float, source: str = "folder") -> list[Song]:
    """A multitrack collection laid out as one folder per song (MedleyDB, iKala, DSD100 style).

    Layout: ROOT/<song>/ or ROOT/{train,valid,test}/<song>/, each song folder holding vocals.<ext> and
    either accompaniment.<ext> or any other stems (summed into the accompaniment), and optionally
    mixture.<ext> (else mixture = vocals + accompaniment); <ext> is any audio format. Without
    train/ and test/ every song trains (a --valid-fraction of them validates) and no test split is
    written; with a valid/ folder its songs validate and --valid-fraction is not used. `source` names
    the songs' source in the cache (--folder-source: "musdb" for MUSDB18 songs exported with
    --export-folder, so that train.py's --source-weight musdb=N still finds them).
    """
    if not root.is_dir():
        raise SystemExit(f"data_prep: --folder-root {root}: no such directory")
    subsets = [(sub, root / sub) for sub in FOLDER_SPLITS if (root / sub).is_dir()] or [("train", root)]
    songs = []
    for subset, folder in subsets:
        for song_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
            stems = {p.stem.lower() for p in audio_files(song_dir)}
            if "vocals" not in stems or not stems - {"mixture", "vocals"}:
                print(f"data_prep: skipped {song_dir}: a song folder needs vocals.<ext> and accompaniment.<ext> "
                      "(or other stems to sum)", file=sys.stderr)
                continue
            songs.append(Song(song_dir.name, source, "folder", str(song_dir), subset))
    if not songs:
        raise SystemExit(f"data_prep: no song folders under {root} (expected ROOT/<song>/vocals.wav + "
                         "accompaniment.wav or other stems; see data_prep.py --help)")
    if not any(sub == "valid" for sub, _ in subsets):
        assign_valid([s for s in songs if s.split == "train"], valid_fraction, key=lambda s: s.name)
    if len(subsets) == 1:
        print(f"data_prep: {root} has no train/ and test/ folders: all {len(songs)} songs train or validate, "
              "no test split", file=sys.stderr)
    return songs


def assign_valid(songs: list[Song], fraction: float, key) -> None:
    """Deterministically move `fraction` of the groups (by `key`) of train songs to valid."""
    groups = sorted({key(s) for s in songs}, key=lambda g: hashlib.sha1(g.encode()).hexdigest())
    n_valid = int(round(fraction * len(groups)))
    if fraction > 0 and len(groups) >= 2:
        n_valid = min(max(n_valid, 1), len(groups) - 1)
    chosen = set(groups[:n_valid])
    for s in songs:
        s.split = "valid" if key(s) in chosen else "train"


def remix_songs(train: list[Song], n: int, seed: int) -> list[Song]:
    """N new training songs: one song's vocals over other songs' accompaniment stems.

    Each part gets a random gain in REMIX_GAIN; partners come from the same source (MUSDB
    stems over MUSDB vocals, MIR-1K accompaniment under MIR-1K vocals).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vocal_song = train[rng.integers(len(train))]
        partners = [s for s in train if s.kind == vocal_song.kind and s is not vocal_song]
        if not partners:
            raise SystemExit("data_prep: --remix needs at least two training songs of one source")
        parts = [("vocals", vocal_song, float(rng.uniform(*REMIX_GAIN)), float(rng.random()))]
        for stem in accompaniment_parts(vocal_song):
            partner = partners[rng.integers(len(partners))]
            parts.append((stem, partner, float(rng.uniform(*REMIX_GAIN)), float(rng.random())))
        desc = " + ".join(f"{stem}:{s.name}" for stem, s, _, _ in parts)
        out.append(Song(f"remix-{i:04d} ({desc})", "remix", "remix", "", "train", parts))
    return out


def speed_songs(train: list[Song], factors: list[float]) -> list[Song]:
    """A copy of each training song per factor, played that much faster (tape-style: pitch and tempo
    change together, 2 ** (k / 12) = k semitones). Every stem is resampled alike, so the copy is as
    coherent a mix as its original."""
    return [Song(f"{song.name} (speed {factor:g})", "speed", "speed", song.path, "train", [(song, factor)])
            for factor in factors for song in train]


def accompaniment_parts(song: Song) -> tuple[str, ...]:
    return ("accompaniment",) if song.kind in ("mir1k", "folder") else MUSDB_PARTS


# ---------------------------------------------------------------- decoding songs
def decode_stems(song: Song, stems: tuple[str, ...]) -> tuple[dict[str, np.ndarray], int, int]:
    """Decode the named stems of a song to 11025 Hz mono. Returns (waves, orig_sr, orig_channels).

    "accompaniment" is a stem of every source: MIR-1K's left channel, or the sum of MUSDB18's
    drums, bass and other, summed before resampling (resampling is linear: saves two passes).
    """
    if song.kind == "stem":
        # One ffmpeg pass does decode, sums, channel mean and soxr (stempeg: 7 processes a song).
        mixdowns = [[MUSDB_STEM_INDEX[p] for p in MUSDB_PARTS] if s == "accompaniment" else [MUSDB_STEM_INDEX[s]]
                    for s in stems]
        data, rate, channels = audio.decode_mixdowns(song.path, mixdowns)
        return dict(zip(stems, data)), rate, channels
    if song.kind == "wav":
        needed = sorted({p for s in stems for p in (MUSDB_PARTS if s == "accompaniment" else (s,))})
        decoded = {name: audio.read_audio(Path(song.path) / f"{name}.wav") for name in needed}
        rates = sorted({sr for _, sr in decoded.values()})
        if len(rates) > 1:
            raise audio.AudioError(f"{song.path}: stems have different sample rates {rates}; "
                                   "re-export them at one rate")
        rate, channels = rates[0], decoded[needed[0]][0].shape[1]
        mono = {name: audio.to_mono(x) for name, (x, _) in decoded.items()}
        n = min(len(x) for x in mono.values())
        raw = {s: sum(mono[p][:n] for p in MUSDB_PARTS) if s == "accompaniment" else mono[s][:n] for s in stems}
    elif song.kind == "folder":
        files = {p.stem.lower(): p for p in audio_files(Path(song.path))}
        parts = [name for name in files if name not in ("mixture", "vocals")]
        accompaniment_files = ["accompaniment"] if "accompaniment" in files else parts
        needed = sorted({"vocals", *accompaniment_files, *(["mixture"] if "mixture" in files and "mixture" in stems else [])})
        decoded = {name: audio.read_audio(files[name]) for name in needed}
        rates = sorted({sr for _, sr in decoded.values()})
        if len(rates) > 1:
            raise audio.AudioError(f"{song.path}: stems have different sample rates {rates}; re-export them at one rate")
        rate, channels = rates[0], decoded["vocals"][0].shape[1]
        mono = {name: audio.to_mono(x) for name, (x, _) in decoded.items()}
        n = min(len(x) for x in mono.values())
        accomp = sum(mono[p][:n] for p in accompaniment_files)
        channel = {"vocals": mono["vocals"][:n], "accompaniment": accomp,
                   "mixture": mono["mixture"][:n] if "mixture" in mono else mono["vocals"][:n] + accomp}
        raw = {s: channel[s] for s in stems}
    elif song.kind == "mir1k":
        clip, rate = audio.read_audio(song.path)
        channels = clip.shape[1]
        if channels != 2:
            raise audio.AudioError(f"{song.path}: MIR-1K clips must be stereo (left = accompaniment, "
                                   f"right = vocals); this one has {channels} channel(s)")
        channel = {"accompaniment": clip[:, 0], "vocals": clip[:, 1], "mixture": clip[:, 0] + clip[:, 1]}
        raw = {s: channel[s] for s in stems}
    else:
        raise ValueError(f"cannot decode {song.kind} directly")
    waves = {s: audio.prepare_waveform(x, rate) for s, x in raw.items()}
    length = min(len(w) for w in waves.values())       # stems can differ by a few samples
    return {s: w[:length] for s, w in waves.items()}, rate, channels


def song_waves(song: Song) -> tuple[dict[str, np.ndarray], int, int]:
    """Mixture, vocals and accompaniment of a song at 11025 Hz mono."""
    if song.kind == "speed":
        (original, factor), = song.parts
        waves, rate, channels = song_waves(original)
        return {s: audio.played_at(w, factor) for s, w in waves.items()}, rate, channels
    if song.kind != "remix":
        return decode_stems(song, ("mixture", "vocals", "accompaniment"))
    parts = []
    for stem, src, gain, offset_fraction in song.parts:
        wave = decode_stems(src, (stem,))[0][stem]
        parts.append((stem, wave * gain, offset_fraction))
    length = min(len(w) for _, w, _ in parts)
    cropped = {}
    for stem, wave, offset_fraction in parts:
        start = int(offset_fraction * (len(wave) - length))
        cropped[stem] = wave[start:start + length]
    vocals = cropped.pop("vocals")
    accomp = sum(cropped.values())
    return {"mixture": vocals + accomp, "vocals": vocals, "accompaniment": accomp}, audio.SAMPLE_RATE, 1


EXPORT_SUM_TOLERANCE = 1e-4      # a mixture this close to vocals + accompaniment is their sum (16-bit step: 3e-5)
# --export-format: (file suffix, soundfile keyword arguments). Ogg Vorbis at quality 0.5 (libsndfile's
# compression level = 1 - quality) codes an 11025 Hz stem at ~30 dB SNR in a third of FLAC's bytes,
# what fits the GPU machine's carry limit beside the checkout (bench/gpu.py bundle).
EXPORT_FORMATS = {"flac": (".flac", {"subtype": "PCM_16"}),
                  "vorbis": (".ogg", {"format": "OGG", "subtype": "VORBIS", "compression_level": 0.5})}


def export_folder(songs: list[Song], out: Path, jobs: int, fmt: str = "flac") -> int:
    """Write songs as a --folder-root collection: out/<split>/<song>/{mixture,vocals,accompaniment}.flac
    (or .ogg, `fmt` "vorbis"), 11025 Hz mono, the waves the caches are made of (the mixture as decoded,
    e.g. MUSDB18's AAC mix). A mixture that is the sum of the stems (MIR-1K, remixes) is left out:
    folder_songs sums it back, and a third less travels to a machine with a carry limit. Songs that
    cannot be decoded are reported and skipped. Returns the songs written."""
    import soundfile as sf
    from tqdm import tqdm
    suffix, options = EXPORT_FORMATS[fmt]

    def write(song: Song) -> str | None:
        try:
            waves, _, _ = song_waves(song)
        except (audio.AudioError, OSError, ValueError) as exc:
            return f"data_prep: skipped {song.path or song.name}: {exc}"
        folder = out / song.split / audio.safe_name(song.name)
        folder.mkdir(parents=True, exist_ok=True)
        if np.max(np.abs(waves["mixture"] - waves["vocals"] - waves["accompaniment"]), initial=0) <= EXPORT_SUM_TOLERANCE:
            waves = {stem: wave for stem, wave in waves.items() if stem != "mixture"}
        for stem, wave in waves.items():
            partial = folder / f"{stem}.partial{suffix}"
            sf.write(partial, np.clip(wave, -1, 1), audio.SAMPLE_RATE, **options)
            os.replace(partial, folder / f"{stem}{suffix}")
        return None

    problems = [m for m in tqdm(parallel_map(write, songs, jobs), total=len(songs), desc="export", unit="song",
                                file=sys.stderr, leave=False) if m]
    for message in problems:
        print(message, file=sys.stderr)
    return len(songs) - len(problems)


def prepare_song(song: Song) -> Prepared:
    """Decode, check and window one song. Never raises: problems come back as a message."""
    where = song.path or song.name
    try:
        waves, sr, channels = song_waves(song)
    except (audio.AudioError, OSError, RuntimeError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        return Prepared(song, f"skipped {where}: cannot decode ({text[-1] if text else type(exc).__name__}); "
                              "check the file or remove it")
    mix, vocals, accomp = waves["mixture"], waves["vocals"], waves["accompaniment"]
    if mix.size == 0 or np.abs(mix).max() < SILENCE_PEAK:
        return Prepared(song, f"skipped {where}: the mixture is silent")
    message = ""
    if len(mix) < audio.WINDOW_SAMPLES:
        message = (f"padded {where}: {len(mix) / audio.SAMPLE_RATE:.2f} s is shorter than one "
                   f"{audio.WINDOW_SAMPLES / audio.SAMPLE_RATE:.2f} s window; zero-padded to one window")
    mix_spec = audio.stft(mix)
    mix_win, valid_frames = audio.to_windows(mix_spec)
    vocal_win, _ = audio.to_windows(np.abs(audio.stft(vocals)))
    arrays = {
        "mix_mag": np.abs(mix_win), "mix_phase": np.angle(mix_win).astype(np.float32),
        "vocal_mag": vocal_win, "valid_frames": valid_frames,
        "vocal_abs_sum": audio.window_abs_sums(vocals, len(valid_frames)),
        "mix_wave": mix, "vocal_wave": vocals, "accomp_wave": accomp,
    }
    return Prepared(song, message, arrays, len(mix), sr, channels)


# ---------------------------------------------------------------- writing caches
def write_split(path: Path, songs: list[Song], params: dict, jobs: int, desc: str) -> dict:
    """Prepare `songs` and stream them into `path`. Returns summary counts."""
    from tqdm import tqdm
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = CacheWriter(path, params)
    stats = {"songs": 0, "windows": 0, "samples": 0, "skipped": 0}
    messages = []
    try:
        with tqdm(total=len(songs), desc=desc, unit="song", file=sys.stderr) as bar:
            for prep in parallel_map(prepare_song, songs, jobs):
                if prep.message:
                    messages.append(prep.message)
                    tqdm.write(f"data_prep: {prep.message}", file=sys.stderr)
                if prep.arrays:
                    writer.add(prep.arrays, prep.song.name, prep.song.source, prep.song.path,
                               prep.orig_sample_rate, prep.orig_channels)
                    stats["songs"] += 1
                else:
                    stats["skipped"] += 1
                bar.update()
        if stats["songs"] == 0:
            raise SystemExit(f"data_prep: no usable song for {path.name}; nothing written")
    except BaseException:
        writer.abort()
        raise
    stats["windows"], stats["samples"] = writer.n_windows, writer.n_samples
    writer.close()
    return stats


def source_stems(song: Song) -> tuple[str, ...]:
    """The stems a song contributes to online remixing (sources.py)."""
    return ("vocals", *accompaniment_parts(song))


def write_sources(path: Path, songs: list[Song], params: dict, jobs: int) -> dict:
    """Per-stem 11025 Hz waveforms of the training songs (not remixes) -> path (sources.py format)."""
    from tqdm import tqdm
    import sources

    def decode(song: Song):
        try:
            return song, decode_stems(song, source_stems(song))[0], ""
        except (audio.AudioError, OSError, RuntimeError, ValueError) as exc:
            text = str(exc).strip().splitlines()
            return song, None, f"skipped {song.path}: cannot decode ({text[-1] if text else type(exc).__name__})"

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = sources.SourceWriter(path, params)
    stats = {"songs": 0, "skipped": 0, "samples": 0}
    try:
        with tqdm(total=len(songs), desc="sources", unit="song", file=sys.stderr) as bar:
            for song, stems, message in parallel_map(decode, songs, jobs):
                if stems is None or max(float(np.abs(w).max(initial=0.0)) for w in stems.values()) < SILENCE_PEAK:
                    tqdm.write(f"data_prep: {message or f'skipped {song.path}: silent'}", file=sys.stderr)
                    stats["skipped"] += 1
                else:
                    writer.add(stems, song.name, song.source)
                    stats["songs"] += 1
                    stats["samples"] += min(len(w) for w in stems.values())
                bar.update()
        if stats["songs"] == 0:
            raise SystemExit(f"data_prep: no usable training song for {path}; nothing written")
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return stats


# ---------------------------------------------------------------- CLI
def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 1, 1
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants K/N, e.g. 2/4; got {text!r}")
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 1 <= K <= N; got {text!r}")
    return k, n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Prepare (n, 512, 128, 1) HDF5 caches (train/valid/test) from MUSDB18, MIR-1K "
                    "or, when neither is given, the built-in demo dataset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_argument_group("sources")
    src.add_argument("--musdb-root", type=Path, default=os.environ.get("MUSDB_PATH"),
                     help="MUSDB18 root with train/ and test/ (stems or HQ wav); env MUSDB_PATH")
    src.add_argument("--wav", action="store_true", default=None,
                     help="the MUSDB18 root is MUSDB18-HQ wav folders (auto-detected otherwise)")
    src.add_argument("--mir1k-root", type=Path, help="MIR-1K Wavfile/ folder (any audio format)")
    src.add_argument("--mir1k-extra-root", type=Path,
                     help="more MIR-1K-style clips (e.g. ../shared/data/mir-1k-extra/Wavfile, Ogg Opus): training only")
    src.add_argument("--folder-root", type=Path,
                     help="a collection with one folder per song (ROOT/<song>/ or ROOT/{train,valid,test}/<song>/ holding "
                          "vocals.<ext>, accompaniment.<ext> or other stems to sum, optional mixture.<ext>)")
    src.add_argument("--folder-source", default="folder", metavar="NAME",
                     help="the --folder-root songs' source name in the cache, which train.py --source-weight "
                          "refers to (e.g. musdb for MUSDB18 songs exported with --export-folder)")
    src.add_argument("--demo-root", type=Path, default=Path("data/demo"),
                     help="where the built-in demo songs are written when no source is given")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("data/prepared"), help="output folder")
    out.add_argument("--force", action="store_true", help="rebuild caches even if their parameters match")
    out.add_argument("--export-folder", type=Path, default=None, metavar="DIR",
                     help="instead of caches, write the songs of --splits as 11025 Hz mono FLAC stems in "
                          "DIR/<split>/<song>/ (a --folder-root collection, e.g. for a machine without ffmpeg)")
    out.add_argument("--export-format", choices=sorted(EXPORT_FORMATS), default="flac",
                     help="--export-folder's stems: 16-bit FLAC, or Ogg Vorbis (~30 dB SNR, a third of the size)")
    out.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                     help="prepare only shard K of N (by song); files are named SPLIT-KofN.h5")
    opt = p.add_argument_group("options")
    opt.add_argument("--valid-fraction", type=float, default=0.1,
                     help="fraction of training songs held out for validation when the official "
                          "MUSDB18 validation list does not apply")
    opt.add_argument("--remix", type=int, default=0, metavar="N",
                     help="add N remixed training songs (one song's vocals over other songs' "
                          "accompaniment stems, random gains 0.25..1.25)")
    opt.add_argument("--speed", type=float, nargs="+", default=[], metavar="F",
                     help="add a copy of each training song per factor F, F times faster (pitch and tempo "
                          "together, every stem alike, so the mix stays coherent); 1.059 = one semitone up, "
                          "e.g. --speed 0.891 0.944 1.059 1.122 for -2..+2 semitones")
    opt.add_argument("--sources", action="store_true",
                     help="also write OUT/sources.h5: each training song's stems (vocals, drums, bass, other or "
                          "accompaniment) as 11025 Hz waveforms, for train.py --online-remix")
    opt.add_argument("--seed", type=int, default=0, help="seed for remixing")
    opt.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to write")
    opt.add_argument("--jobs", type=int, default=(os.cpu_count() or 1) + 1,
                     help="songs in flight at once (default: cores + 1, as each spends part of its "
                          "time waiting for ffmpeg)")
    return p


def gather_songs(args) -> tuple[list[Song], dict]:
    """All songs of the requested sources with their split, plus the source part of the params."""
    songs, sources = [], {}
    if args.musdb_root:
        songs += musdb_songs(Path(args.musdb_root), args.wav, args.valid_fraction)
        sources["musdb"] = str(Path(args.musdb_root).resolve())
    if args.mir1k_root:
        songs += mir1k_songs(Path(args.mir1k_root), args.valid_fraction)
        sources["mir1k"] = str(Path(args.mir1k_root).resolve())
    if args.mir1k_extra_root:
        songs += mir1k_songs(Path(args.mir1k_extra_root), args.valid_fraction, train_only=True)
        sources["mir1k-extra"] = str(Path(args.mir1k_extra_root).resolve())
    if args.folder_root:
        if args.folder_source in sources:
            raise SystemExit(f"data_prep: --folder-source {args.folder_source} is also the source of another root "
                             "given; prepare the two into separate caches")
        songs += folder_songs(Path(args.folder_root), args.valid_fraction, args.folder_source)
        sources[args.folder_source] = str(Path(args.folder_root).resolve())
    if not sources:
        import demo_data
        print(f"data_prep: no --musdb-root, --mir1k-root or --folder-root given: using the built-in demo dataset "
              f"({args.demo_root}); for real data run: python data_prep.py --musdb-root /path/to/musdb18",
              file=sys.stderr)
        root = demo_data.build_demo(args.demo_root)
        songs = musdb_songs(root, True, args.valid_fraction)
        for s in songs:
            s.source = "demo"
        sources["demo"] = str(root.resolve())
    originals = [s for s in songs if s.split == "train"]
    if args.remix:
        songs += remix_songs(originals, args.remix, args.seed)
    if args.speed:
        if any(not 0.5 <= f <= 2.0 for f in args.speed):
            raise SystemExit(f"data_prep: --speed factors must lie in 0.5..2 (got {args.speed})")
        songs += speed_songs(originals, args.speed)
    return songs, sources


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    started = time.time()
    try:
        songs, sources_ = gather_songs(args)
    except audio.AudioError as exc:
        raise SystemExit(f"data_prep: {exc}")
    if args.export_folder:
        chosen = [s for s in songs if s.split in args.splits]
        written = export_folder(chosen, args.export_folder, args.jobs, args.export_format)
        suffix = EXPORT_FORMATS[args.export_format][0]
        size_mb = sum(p.stat().st_size for p in args.export_folder.rglob(f"*{suffix}")) / 2 ** 20
        print(f"data_prep: {written} songs ({len(chosen) - written} skipped) -> {args.export_folder} as "
              f"{args.export_format} stems ({size_mb:.1f} MB) in {time.time() - started:.1f} s")
        return
    k, n = args.shard or (1, 1)
    totals = collections.Counter()
    written = []
    for split in args.splits:
        split_songs = [s for s in songs if s.split == split][k - 1::n]
        name = f"{split}-{k}of{n}.h5" if args.shard else f"{split}.h5"
        path = args.out / name
        params = {"format": CACHE_FORMAT, **audio.stft_params(), "sources": sources_, "split": split,
                  "valid_fraction": args.valid_fraction, "remix": args.remix, "seed": args.seed,
                  **({"speed": args.speed} if args.speed else {}),
                  "shard": [k, n], "songs": [s.name for s in split_songs]}
        if not split_songs:
            print(f"data_prep: {split}: no songs in this split; nothing written", file=sys.stderr)
            continue
        if not args.force and cache_is_current(path, params):
            print(f"data_prep: {path} is up to date (same parameters); --force rebuilds it", file=sys.stderr)
            written.append(path)
            continue
        stats = write_split(path, split_songs, params, args.jobs, desc=f"{split:5s}")
        totals.update(stats)
        written.append(path)
    if args.sources:
        import sources
        train_songs = [s for s in songs if s.split == "train" and s.kind not in ("remix", "speed")][k - 1::n]
        params = {"format": 1, "sample_rate": audio.SAMPLE_RATE, "resample": f"soxr-{audio.RESAMPLE_QUALITY}",
                  "sources": sources_, "songs": [s.name for s in train_songs], "shard": [k, n]}
        path = args.out / (f"sources-{k}of{n}.h5" if args.shard else sources.FILE_NAME)
        if not args.force and sources.is_current(path, params):
            print(f"data_prep: {path} is up to date (same parameters); --force rebuilds it", file=sys.stderr)
        else:
            stats = write_sources(path, train_songs, params, args.jobs)
            totals["skipped"] += stats["skipped"]
            print(f"data_prep: {path}: stems of {stats['songs']} training songs, "
                  f"{stats['samples'] / audio.SAMPLE_RATE / 60:.1f} min", file=sys.stderr)
        written.append(path)
    size_mb = sum(p.stat().st_size for p in written) / 2 ** 20
    hours = totals["samples"] / audio.SAMPLE_RATE / 3600
    print(f"data_prep: {totals['songs']} songs ({totals['skipped']} skipped), {totals['windows']} windows, "
          f"{hours:.2f} h of audio in {time.time() - started:.1f} s -> "
          f"{', '.join(str(p) for p in written)} ({size_mb:.0f} MB)")


if __name__ == "__main__":
    main()
