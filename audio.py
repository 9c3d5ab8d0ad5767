"""Audio I/O and the paper's signal chain: the only module that knows the STFT parameters.

Everything that touches sample rates, FFT sizes, hops, bin counts or window lengths goes
through the constants and functions here, so the cache, the model, evaluation and
separation cannot disagree about them.
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- configuration
SAMPLE_RATE = 11025          # Hz: every song is resampled to this (paper: 44.1 kHz / 4)
N_FFT = 1024                 # STFT frame size; 513 bins of which the Nyquist bin is dropped
HOP = 256                    # STFT hop in samples
N_BINS = 512                 # kept bins 0..511
WINDOW_FRAMES = 128          # frames per model window (128 * 256 / 11025 = 2.97 s)
STFT_WINDOW = "hann"
RESAMPLE_QUALITY = "HQ"      # soxr quality

WINDOW_SAMPLES = WINDOW_FRAMES * HOP
WINDOW_SHAPE = (N_BINS, WINDOW_FRAMES, 1)   # one model window: (bins, frames, channel)


def stft_params() -> dict:
    """The signal-chain parameters, as stored in cache attrs and run configs."""
    return {
        "sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop": HOP, "n_bins": N_BINS,
        "window_frames": WINDOW_FRAMES, "stft_window": STFT_WINDOW, "center": True,
        "resample": f"soxr-{RESAMPLE_QUALITY}", "mono": "channel mean",
    }


class AudioError(Exception):
    """A file that cannot be used; the message names the file and what to do."""


# ---------------------------------------------------------------- decoding
def require_ffmpeg() -> None:
    """Raise a one-line error when ffmpeg/ffprobe are not on PATH (stempeg and musdb need both)."""
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise AudioError(
            f"{' and '.join(missing)} not found on PATH: install ffmpeg "
            "(Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)")


def read_audio(path: str | Path, offset: float = 0.0,
               duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode any audio file to float32 (samples, channels) at its own sample rate.

    libsndfile (wav, flac, ogg, mp3) first; then FFmpeg's libraries in this process (PyAV) for
    everything else (m4a, mp4, ...), or the ffmpeg program where PyAV is not installed.

    Args:
        path: the audio file.
        offset: seconds to skip at the start.
        duration: seconds to read (None = to the end).
    """
    path = check_file(path)
    import soundfile as sf
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            f.seek(min(int(round(offset * sr)), f.frames))
            frames = -1 if duration is None else int(round(duration * sr))
            audio = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        if has_pyav():
            sr, blocks = decode_blocks(path)
            audio = np.concatenate(list(blocks))
            start = min(int(round(offset * sr)), len(audio))
            audio = audio[start:] if duration is None else audio[start:start + int(round(duration * sr))]
        else:
            audio, sr = _read_with_ffmpeg(path, offset, duration)
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or infinite samples; re-export the file")
    return audio, sr


DECODE_BLOCK = 1 << 18          # samples per block decode_blocks yields (6 s at 44.1 kHz)


def has_pyav() -> bool:
    """True when PyAV (FFmpeg's libraries, bundled in its wheel) is importable."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def decode_blocks(path: Path) -> tuple[int, Iterator[np.ndarray]]:
    """The first audio stream of any file FFmpeg reads, decoded in this process by PyAV: (sample
    rate, iterator of float32 (samples, channels) blocks). No ffmpeg program start (60-120 ms a
    file) and no second pass to probe the rate; memory holds one block at a time.

    Like the ffmpeg program, a damaged packet is skipped and decoding goes on; a file with no
    decodable audio raises a one-line AudioError.
    """
    import av
    unreadable = f"{path}: not a readable audio file (FFmpeg found no decodable audio stream in it)"
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError):
        raise AudioError(unreadable) from None
    if not container.streams.audio:
        container.close()
        raise AudioError(unreadable)
    stream = container.streams.audio[0]
    sr, channels = stream.rate, stream.channels
    if not sr or not channels:
        container.close()
        raise AudioError(unreadable)

    def frames() -> Iterator[np.ndarray]:
        # planar float (channels, samples) at the stream's own rate and layout, whatever each frame's
        # format: what the AAC, Opus and MP3 decoders give already; anything else goes through the resampler
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=sr)
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            for frame in decoded:
                if frame.format.name == "fltp" and frame.rate == sr and len(frame.layout.channels) == channels:
                    yield frame.to_ndarray()
                else:
                    yield from (f.to_ndarray() for f in resampler.resample(frame))
        yield from (f.to_ndarray() for f in resampler.resample(None))

    def blocks() -> Iterator[np.ndarray]:
        # joined planar and transposed once per block: a transpose per codec frame cost a third of a
        # 7-second song's decoding
        pending, pending_samples, any_yielded = [], 0, False
        try:
            for frame in frames():
                pending.append(frame)
                pending_samples += frame.shape[1]
                if pending_samples >= DECODE_BLOCK:       # a few big writes, not one per codec frame
                    yield np.concatenate(pending, axis=1).T
                    pending, pending_samples, any_yielded = [], 0, True
        except av.FFmpegError:          # a container that breaks off mid-way: what decoded is kept
            pass
        finally:
            container.close()
        if pending_samples:
            yield np.concatenate(pending, axis=1).T
        elif not any_yielded:
            raise AudioError(unreadable)

    return sr, blocks()


def decode_to_wav(path: Path, wav: Path) -> None:
    """The first audio stream of `path` as a float WAV (RF64, so no 4 GB limit) at its own rate,
    decoded by PyAV and written block by block: memory stays flat whatever the length."""
    sr, blocks = decode_blocks(path)
    write_wav_blocks(wav, sr, blocks)


def write_wav_blocks(wav: Path, sr: int, blocks: Iterable[np.ndarray]) -> None:
    """(samples, channels) float32 blocks, at least one, written one by one to a float RF64 WAV."""
    blocks = iter(blocks)
    first = next(blocks)
    with unsynced_sound_file(wav, "w", sr, first.shape[1], "FLOAT", format="RF64") as out:
        out.write(first)
        for block in blocks:
            out.write(block)


@functools.cache
def _unsynced_class():
    import soundfile as sf

    class UnsyncedSoundFile(sf.SoundFile):
        """soundfile.SoundFile without its flush on close: libsndfile's sf_write_sync is an fsync
        (2 ms for a 7-second stereo stem, three per song: scratch WAV and two stems), made before
        the header is final anyway, so it bought no durability; complete files come from writing
        to a partial name and renaming (StemWriters)."""

        def flush(self) -> None:
            pass

    return UnsyncedSoundFile


def unsynced_sound_file(path: Path, *args, **kwargs):
    """soundfile.SoundFile(path, *args, **kwargs) for writing, closed without an fsync."""
    return _unsynced_class()(str(path), *args, **kwargs)


def pyav_duration(path: Path) -> float:
    """Seconds of audio from the container's headers (PyAV): the stream's duration, else the
    container's (WebM/Matroska streams carry none of their own); nothing is decoded."""
    import av
    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if streams and streams[0].duration and streams[0].time_base:
                return float(streams[0].duration * streams[0].time_base)
            if streams and container.duration:
                return container.duration / av.time_base
    except (av.FFmpegError, UnicodeDecodeError):
        pass
    raise AudioError(f"{path}: not a readable audio file (FFmpeg found no audio stream with a duration)")


_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); import audio\n"
          "try:\n    print(getattr(audio, sys.argv[2])(*map(audio.Path, sys.argv[3:])))\n"
          "except audio.AudioError as exc:\n    print(exc, file=sys.stderr); sys.exit(3)")


def _in_child(function: str, path: Path, *more: Path) -> str:
    """audio.<function>(path, *more) in a child Python process, for files from strangers (the web
    page's uploads): a decoder that crashes on a crafted file ends the child, not the server. Its
    AudioError comes back as one; its printed result as the return value. ~0.2 s of start-up."""
    import sys
    out = subprocess.run([sys.executable, "-c", _CHILD, str(Path(__file__).resolve().parent), function, str(path),
                          *map(str, more)], capture_output=True, text=True)
    if out.returncode == 3:
        raise AudioError(out.stderr.strip().splitlines()[-1])
    if out.returncode != 0:
        raise AudioError(f"{path}: the decoder failed on it (exit status {out.returncode}); the file is damaged "
                         "or not audio")
    return out.stdout.strip()


def decode_to_wav_isolated(path: Path, wav: Path) -> None:
    """decode_to_wav in a child process (_in_child)."""
    _in_child("decode_to_wav", path, wav)


def safe_name(name: str) -> str:
    """A file-name field that stays one path component: no separators, never '', '.' or '..'."""
    name = name.replace("/", "_").replace("\\", "_").replace("\0", "_")
    return "_" + name if name.strip(". ") == "" else name


def check_file(path: str | Path) -> Path:
    """The path, if it names a non-empty file; else a one-line AudioError."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, expected an audio file")
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    return path


def probe(path: Path) -> tuple[int, int]:
    """(sample rate, channels) of a file's first audio stream, by ffprobe."""
    require_ffmpeg()
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=sample_rate,channels", "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    fields = out.stdout.strip().split("\n")[0].split(",") if out.returncode == 0 else []
    if len(fields) < 2 or not all(x.strip().isdigit() for x in fields[:2]):
        raise AudioError(f"{path}: not a readable audio file (ffprobe found no audio stream)")
    return int(fields[0]), int(fields[1])


def duration(path: str | Path) -> float:
    """Seconds of audio from the file's header (libsndfile), ffprobe, or, without ffprobe, PyAV in a
    child process (the page's uploads come from strangers); nothing is decoded."""
    path = check_file(path)
    import soundfile as sf
    try:
        return float(sf.info(str(path)).duration)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    if shutil.which("ffprobe") is None and has_pyav():     # no ffprobe: PyAV, in a child (untrusted files)
        return float(_in_child("pyav_duration", path))
    require_ffmpeg()
    # The stream's duration, else the container's: WebM/Matroska (Opus) streams carry none of their own.
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=codec_type,duration:format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True)
    import json
    try:
        info = json.loads(out.stdout or "{}")
    except ValueError:
        info = {}
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    for value in ([streams[0].get("duration"), info.get("format", {}).get("duration")] if streams else []):
        try:
            if value not in (None, "N/A") and float(value) > 0:
                return float(value)
        except ValueError:
            pass
    raise AudioError(f"{path}: not a readable audio file (ffprobe found no audio stream with a duration)")


def _read_with_ffmpeg(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    sr, channels = probe(path)
    # no -ss at 0: a seek re-primes the first AAC frame differently from a plain decode
    cmd = ["ffmpeg", "-v", "error", "-nostdin", *(["-ss", str(offset)] if offset > 0 else []), "-i", str(path)]
    if duration is not None:
        cmd += ["-t", str(duration)]
    cmd += ["-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    out = subprocess.run(cmd, capture_output=True)
    if out.returncode != 0:
        reason = out.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: ffmpeg could not decode it ({reason[-1] if reason else 'unknown error'})")
    audio = np.frombuffer(out.stdout, dtype=np.float32).reshape(-1, channels)
    return audio.copy(), sr


TRUNCATION_TOLERANCE_S = 0.1    # decoded audio may fall this far short of a header's duration (codec delay)
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5,
                    "5.1": 6, "6.1": 7, "7.1": 8}


def decode_mixdowns(path: str | Path, mixdowns: list[list[int]]) -> tuple[np.ndarray, int, int]:
    """Decode a multi-stream file (a MUSDB18 .stem.mp4) straight to SAMPLE_RATE mono mixdowns.

    Output k is the channel mean of the sum of the streams in mixdowns[k] (e.g. [[0], [4],
    [1, 2, 3]] = mixture, vocals, accompaniment). The sum, the channel mean and the soxr
    resampling (libsoxr, 20-bit precision, as soxr "HQ") all run inside one ffmpeg pass, so
    13x less data crosses the pipe than 44.1 kHz stereo stems would.

    Returns (audio (n_outputs, samples) float32, original sample rate, original channels).
    """
    require_ffmpeg()
    path = Path(path)
    n_streams = 1 + max(max(m) for m in mixdowns)
    # Every stream as stereo (mono is duplicated, so its mean is unchanged) so channels line up.
    chains = [f"[0:a:{k}]aformat=sample_fmts=flt:channel_layouts=stereo[s{k}]" for k in range(n_streams)]
    merged = "".join(f"[s{k}]" for k in range(n_streams))
    merge = f"{merged}amerge=inputs={n_streams}" if n_streams > 1 else "[s0]anull"
    terms = ["+".join(f"0.5*c{2 * k}+0.5*c{2 * k + 1}" for k in m) for m in mixdowns]
    pan = f"pan={len(mixdowns)}c|" + "|".join(f"c{i}={t}" for i, t in enumerate(terms))
    graph = ";".join(chains) + f";{merge},{pan},aresample={SAMPLE_RATE}:resampler=soxr:precision=20[out]"
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-filter_complex", graph,
                          "-map", "[out]", "-f", "f32le", "-acodec", "pcm_f32le", "-"], capture_output=True)
    log = out.stderr.decode(errors="replace")
    streams = re.findall(r"Stream #0:\d+.*?: Audio: .*?, (\d+) Hz, ([^,]+),", log)
    if out.returncode != 0 or len(streams) < n_streams:
        last = [line for line in log.strip().splitlines() if line.strip()]
        raise AudioError(f"{path}: ffmpeg could not decode {n_streams} audio streams "
                         f"({last[-1].strip() if last else 'no audio'})")
    rate, layout = int(streams[0][0]), streams[0][1].strip()
    channels = _LAYOUT_CHANNELS.get(layout) or int((re.match(r"(\d+) channels", layout) or [0, 0])[1])
    data = np.frombuffer(out.stdout, dtype=np.float32).reshape(-1, len(mixdowns)).T
    # A cut-off file keeps its header: its streams decode to different, shorter lengths, and the
    # mix-down stops at the shortest. Decoded audio well short of the header's duration = damaged.
    header = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", log)
    if header:
        promised = int(header[1]) * 3600 + int(header[2]) * 60 + float(header[3])
        decoded = data.shape[1] / SAMPLE_RATE
        if decoded < promised - max(TRUNCATION_TOLERANCE_S, 0.01 * promised):
            raise AudioError(f"{path}: damaged or cut short: its streams decode to {decoded:.2f} s of the "
                             f"{promised:.2f} s its header promises; re-download or re-export the file")
    return data.copy(), rate, channels


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(samples, channels) or (samples,) -> (samples,) channel mean, float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return audio
    # a matrix-vector product: 15x faster than mean(axis=1) on (samples, 2), and for stereo the
    # same numbers ((a + b) * 0.5 is exact scaling of the rounded sum)
    return audio @ np.full(audio.shape[1], 1.0 / audio.shape[1], np.float32)


def resample(audio: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """soxr resampling along the first axis (mono or (samples, channels))."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    import soxr
    return soxr.resample(np.asarray(audio, dtype=np.float32), sr_in, sr_out,
                         quality=RESAMPLE_QUALITY).astype(np.float32)


def played_at(wave: np.ndarray, speed: float) -> np.ndarray:
    """An 11025 Hz waveform (mono or (samples, channels)) played `speed` times as fast, like a tape:
    pitch and tempo together, read as if recorded at speed x the rate (data_prep.py --speed's copies,
    separate.py --speeds)."""
    return resample(wave, round(SAMPLE_RATE * speed), SAMPLE_RATE)


def prepare_waveform(audio: np.ndarray, sr: int) -> np.ndarray:
    """Paper chain up to the STFT: channel mean, then resample to SAMPLE_RATE."""
    return resample(to_mono(audio), sr, SAMPLE_RATE)


# ---------------------------------------------------------------- STFT
def n_frames(n_samples: int) -> int:
    """STFT frames of a centered STFT of n_samples samples."""
    return 1 + n_samples // HOP


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (scipy.signal.get_window("hann", n_fft), librosa's default); read-only,
    made once per size (every STFT of every chunk asks for it)."""
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    window.flags.writeable = False
    return window


def spectrogram(wave: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centered Hann STFT, zero padded: complex64 (1 + n_fft // 2, 1 + len // hop).

    Numerically librosa.stft(..., center=True, pad_mode="constant") (tests/test_audio.py checks),
    without librosa's import time (about 2 s, which separate.py's start-up cannot afford).
    """
    import scipy.fft
    x = np.pad(np.asarray(wave, dtype=np.float32), n_fft // 2)
    n = 1 + (len(x) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(x, (n, n_fft), (x.strides[0] * hop, x.strides[0]), writeable=False)
    return scipy.fft.rfft(frames * _hann(n_fft), axis=1, workers=-1).T.astype(np.complex64, copy=False)


EXCERPT_SAMPLES = (WINDOW_FRAMES - 1) * HOP + N_FFT   # samples one window's frames cover, uncentered
STFT_BLOCK = 4      # excerpts per FFT call and per block of the remix sampler: their frames (2 MB) stay in cache


def excerpt_stft(excerpts: np.ndarray) -> np.ndarray:
    """Batch of waveform excerpts (n, EXCERPT_SAMPLES) -> complex64 (n, N_BINS, WINDOW_FRAMES), bins first
    like the model's windows (a view that skips the Nyquist row).

    The frames of `spectrogram` at a free offset: frame t covers samples [t * HOP, t * HOP + N_FFT)
    (no centering: an excerpt is cut with its context), same window and FFT, Nyquist bin dropped.
    The frames are laid out as columns, so the FFT runs down axis 1 (pocketfft then transforms
    many columns at once in SIMD lanes) and its output needs no transpose.
    """
    import scipy.fft
    x = np.ascontiguousarray(excerpts, dtype=np.float32)
    frames = np.lib.stride_tricks.as_strided(
        x, (len(x), N_FFT, WINDOW_FRAMES), (x.strides[0], x.strides[1], x.strides[1] * HOP), writeable=False)
    window = _hann(N_FFT)[:, None]
    # a fresh windowed array per block, which the FFT may overwrite
    blocks = [scipy.fft.rfft(frames[i:i + STFT_BLOCK] * window, axis=1, workers=1, overwrite_x=True)
              for i in range(0, len(x), STFT_BLOCK)]
    spec = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return spec[:, :N_BINS]          # a view: the Nyquist row dropped without a copy


def waveform(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Inverse of `spectrogram` (librosa.istft's windowed overlap-add): float32, exactly `length` samples."""
    import scipy.fft
    n_frames = min(spec.shape[1], -(-(length + 2 * (n_fft // 2)) // hop))
    frames = scipy.fft.irfft(spec[:, :n_frames].T, n=n_fft, axis=1, workers=-1).astype(np.float32, copy=False)
    frames *= _hann(n_fft)
    out = _overlap_add(frames, hop)
    out *= _overlap_gain(n_fft, hop, n_frames)
    out = out[n_fft // 2:n_fft // 2 + length]
    return np.pad(out, (0, length - len(out)))


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """(n_frames, n_fft) frames summed `hop` samples apart: float32 (n_fft + hop * (n_frames - 1),)."""
    n_frames, n_fft = frames.shape
    out = np.zeros(n_fft + hop * (n_frames - 1), np.float32)
    if n_fft % hop == 0:      # frames tile in n_fft / hop blocks of hop samples: a few big adds
        out_blocks = out.reshape(-1, hop)
        for k in range(n_fft // hop):
            out_blocks[k:k + n_frames] += frames[:, k * hop:(k + 1) * hop]
    else:
        for i in range(n_frames):
            out[i * hop:i * hop + n_fft] += frames[i]
    return out


@functools.lru_cache(maxsize=16)
def _overlap_gain(n_fft: int, hop: int, n_frames: int) -> np.ndarray:
    """1 / the summed squared window of n_frames overlapping frames (0 where that sum vanishes): the
    same for every channel and every chunk of a song, so computed once (read-only)."""
    norm = _overlap_add(np.broadcast_to(_hann(n_fft) ** 2, (n_frames, n_fft)), hop)
    gain = np.zeros_like(norm)
    np.divide(1.0, norm, out=gain, where=norm > np.finfo(np.float32).tiny)
    gain.flags.writeable = False
    return gain


PHASES = ("mixture", "griffin-lim")
GRIFFIN_LIM_ITERATIONS = 32


def griffin_lim(mag: np.ndarray, n_fft: int, hop: int, length: int, n_iter: int = GRIFFIN_LIM_ITERATIONS,
                seed: int = 0) -> np.ndarray:
    """A waveform whose STFT magnitude approximates `mag` (1 + n_fft // 2, frames), phase estimated
    by librosa's (fast) Griffin-Lim from a seeded random start: report 001's alternative to reusing
    the mixture's phase."""
    import librosa
    return librosa.griffinlim(np.asarray(mag, np.float32), n_iter=n_iter, hop_length=hop, n_fft=n_fft,
                              window=STFT_WINDOW, center=True, pad_mode="constant", length=length,
                              random_state=seed).astype(np.float32)


def stft(wave: np.ndarray) -> np.ndarray:
    """Mono waveform at SAMPLE_RATE -> complex (N_BINS, frames), Nyquist bin dropped."""
    return spectrogram(wave, N_FFT, HOP)[:N_BINS]


def istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Complex (N_BINS, frames) -> waveform of exactly `length` samples.

    A zero Nyquist row is put back, so the inverse is the n_fft = 1024 one (the released code
    passed 512 rows to librosa, which silently made it use n_fft = 1022).
    """
    full = np.concatenate([spec, np.zeros((1, spec.shape[1]), dtype=spec.dtype)], axis=0)
    return waveform(full, N_FFT, HOP, length)


def to_windows(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N_BINS, frames) -> ((n, N_BINS, WINDOW_FRAMES), valid_frames (n,)).

    The final partial window is zero-padded (the released code dropped it) and
    valid_frames says how many of each window's frames are real.
    """
    frames = spec.shape[1]
    n = max(1, -(-frames // WINDOW_FRAMES))
    padded = np.zeros((spec.shape[0], n * WINDOW_FRAMES), dtype=spec.dtype)
    padded[:, :frames] = spec
    windows = padded.reshape(spec.shape[0], n, WINDOW_FRAMES).transpose(1, 0, 2)
    valid_frames = np.minimum(WINDOW_FRAMES, frames - np.arange(n) * WINDOW_FRAMES)
    return np.ascontiguousarray(windows), valid_frames.astype(np.int32)


def from_windows(windows: np.ndarray, valid_frames: np.ndarray) -> np.ndarray:
    """Inverse of to_windows: (n, N_BINS, WINDOW_FRAMES[, 1]) -> (N_BINS, sum(valid_frames))."""
    windows = np.asarray(windows)
    if windows.ndim == 4:
        windows = windows[..., 0]
    n, bins, _ = windows.shape
    spec = windows.transpose(1, 0, 2).reshape(bins, n * WINDOW_FRAMES)
    return spec[:, :int(np.sum(valid_frames))]


def window_abs_sums(wave: np.ndarray, n_windows: int) -> np.ndarray:
    """Sum of |waveform| over the samples each window covers (the released code's silence test)."""
    padded = np.zeros(n_windows * WINDOW_SAMPLES, dtype=np.float32)
    padded[:min(len(wave), len(padded))] = np.abs(wave[:len(padded)])
    return padded.reshape(n_windows, WINDOW_SAMPLES).sum(axis=1)


def reconstruct(mag: np.ndarray, phase: np.ndarray, length: int, method: str = "mixture") -> np.ndarray:
    """Magnitude and phase spectrogram (N_BINS, frames) -> waveform of `length` samples.

    method "mixture" uses `phase` (the paper); "griffin-lim" ignores it and estimates one.
    """
    if method == "griffin-lim":
        full = np.concatenate([mag, np.zeros((1, mag.shape[1]), mag.dtype)], axis=0)    # Nyquist row back
        return griffin_lim(full, N_FFT, HOP, length)
    return istft(mag * np.exp(1j * phase), length)
