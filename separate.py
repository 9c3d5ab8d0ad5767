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

Long files are processed in chunks of whole model windows with overlap and a linear cross-fade,
so memory stays bounded and chunk boundaries leave no click.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import audio

ROOT = Path(__file__).resolve().parent
FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}
EXTENSIONS = ("average", "zeros", "top")
WINDOW_SECONDS = audio.WINDOW_SAMPLES / audio.SAMPLE_RATE


# ---------------------------------------------------------------- model choice
def default_run() -> Path | None:
    """The shipped model (pretrained/), else the newest complete run under results/runs."""
    from model import complete_runs
    if (ROOT / "pretrained" / "config.json").exists():
        return ROOT / "pretrained"
    runs = complete_runs(ROOT / "results" / "runs")
    return max(runs, key=lambda d: (d / "best.weights.h5").stat().st_mtime) if runs else None


# ---------------------------------------------------------------- reading
class AudioSource:
    """Random access to a decoded file without holding it in RAM.

    libsndfile formats are read in place; anything else is decoded once by ffmpeg to a
    temporary float WAV file that is read in place the same way.
    """

    def __init__(self, path: Path, offset: float = 0.0, duration: float | None = None):
        import soundfile as sf
        self.path, self._tmp = audio.check_file(path), None
        try:
            self._sf = sf.SoundFile(str(self.path))
            self.sr, self.channels, total = self._sf.samplerate, self._sf.channels, self._sf.frames
        except (sf.LibsndfileError, RuntimeError, TypeError):
            self._sf = None
            self._decode_with_ffmpeg()
            total = self._sf.frames
        self.start = min(int(round(offset * self.sr)), total)
        end = total if duration is None else min(total, self.start + int(round(duration * self.sr)))
        self.frames = end - self.start
        if self.frames <= 0:
            raise audio.AudioError(f"{path}: no audio in the requested range (offset {offset} s)")

    def _decode_with_ffmpeg(self) -> None:
        """Decode to a temporary float WAV (RF64 past 4 GB) that libsndfile then reads in place;
        its header carries the rate and channels, so no separate ffprobe run is needed."""
        import subprocess
        import soundfile as sf
        audio.require_ffmpeg()
        self._tmp = tempfile.NamedTemporaryFile(suffix=".wav", delete=False)
        self._tmp.close()
        out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(self.path), "-map", "0:a:0",
                              "-acodec", "pcm_f32le", "-rf64", "auto", "-f", "wav", self._tmp.name],
                             capture_output=True)
        try:
            if out.returncode != 0:
                raise RuntimeError
            self._sf = sf.SoundFile(self._tmp.name)
        except (sf.LibsndfileError, RuntimeError):
            self.close()
            raise audio.AudioError(f"{self.path}: not a readable audio file (ffmpeg could not decode an audio "
                                   "stream from it)")
        self.sr, self.channels = self._sf.samplerate, self._sf.channels

    def read(self, start: int, n: int) -> np.ndarray:
        """Samples [start, start + n) of the selected range, zero-padded outside it: (n, channels)."""
        out = np.zeros((n, self.channels), np.float32)
        lo, hi = max(start, 0), min(start + n, self.frames)
        if hi > lo:
            self._sf.seek(self.start + lo)
            out[lo - start:hi - start] = self._sf.read(hi - lo, dtype="float32", always_2d=True)
        return out

    def close(self) -> None:
        if self._sf is not None:
            self._sf.close()
            self._sf = None
        if self._tmp is not None:
            Path(self._tmp.name).unlink(missing_ok=True)
            self._tmp = None


# ---------------------------------------------------------------- the mask on the input's own STFT
def native_stft_params(sr: int) -> tuple[int, int]:
    """n_fft and hop giving (nearly) the model's bin spacing and hop time at sample rate sr."""
    ratio = sr / audio.SAMPLE_RATE
    n_fft = int(2 ** np.round(np.log2(audio.N_FFT * ratio)))
    return n_fft, max(1, int(round(audio.HOP * ratio)))


def interpolate_mask(mask: np.ndarray, sr: int, n_bins: int, n_frames: int, hop: int, n_fft: int,
                     extension: str, shift: float = 0.0) -> np.ndarray:
    """Map a (N_BINS, T) mask on the model's grid to (n_bins, n_frames) on a native STFT grid
    whose frame 0 lies `shift` seconds before the mask's frame 0."""
    model_freqs = np.arange(audio.N_BINS) * audio.SAMPLE_RATE / audio.N_FFT
    model_times = np.arange(mask.shape[1]) * audio.HOP / audio.SAMPLE_RATE
    freqs = np.arange(n_bins) * sr / n_fft
    times = np.arange(n_frames) * hop / sr - shift
    # time first (cheap at 512 rows), then frequency
    t_idx = np.interp(times, model_times, np.arange(len(model_times)))
    lo = np.floor(t_idx).astype(int)
    hi = np.minimum(lo + 1, mask.shape[1] - 1)
    w = (t_idx - lo)[None, :]
    in_time = mask[:, lo] * (1 - w) + mask[:, hi] * w
    inside = freqs <= model_freqs[-1]
    out = np.empty((n_bins, n_frames), np.float32)
    f_idx = np.interp(freqs[inside], model_freqs, np.arange(audio.N_BINS))
    lo_f = np.floor(f_idx).astype(int)
    hi_f = np.minimum(lo_f + 1, audio.N_BINS - 1)
    wf = (f_idx - lo_f)[:, None]
    out[inside] = in_time[lo_f] * (1 - wf) + in_time[hi_f] * wf
    if extension == "zeros":
        out[~inside] = 0.0
    elif extension == "average":
        out[~inside] = in_time[audio.N_BINS // 2:].mean(axis=0)[None, :]
    else:                       # "top": each frame's mask at 5.5 kHz carried upward
        out[~inside] = in_time[-1][None, :]
    return out


class SongSeparator:
    """Chunked separation of long audio with a Separator (see separation.py).

    Args:
        separator: the loaded model.
        band: "full" (input rate and channels) or "paper" (11025 Hz mono).
        chunk_windows: model windows per chunk (a chunk is about chunk_windows x 2.97 s).
        overlap_windows: model windows of context on each side, cross-faded.
        extension: mask rule above 5.5 kHz for band "full".
    """

    def __init__(self, separator, band: str = "full", chunk_windows: int = 20, overlap_windows: int = 1,
                 extension: str = "average"):
        self.separator, self.band, self.extension = separator, band, extension
        self.chunk_windows, self.overlap_windows = chunk_windows, overlap_windows

    def _paper_mask(self, mono_11k: np.ndarray, margin_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask, mixture spectrogram) in the model's domain, without the first margin_frames frames.

        The margin gives the window-aligned frames real signal on both sides: a frame half
        made of the block's zero padding would shift its window's min/max statistics.
        """
        spec = audio.stft(mono_11k)[:, margin_frames:]
        windows, valid = audio.to_windows(spec)
        vocal_mag = audio.from_windows(self.separator.vocal_mag(np.abs(windows)[..., None]), valid)
        mix = np.abs(spec)
        mask = np.clip(np.divide(vocal_mag, mix, out=np.zeros_like(mix), where=mix > 1e-8), 0.0, 1.0)
        return mask, spec

    def separate_chunk(self, chunk: np.ndarray, sr: int, margin: int = 0) -> np.ndarray:
        """Vocals of chunk[margin:len-margin] (samples, channels) at sr, or of its 11025 Hz mono
        version (band paper); the margins are context only."""
        mono = audio.prepare_waveform(chunk, sr)
        margin_11k = int(round(margin * audio.SAMPLE_RATE / sr))
        core_11k = int(round((len(chunk) - 2 * margin) * audio.SAMPLE_RATE / sr))
        mask, spec = self._paper_mask(mono, margin_11k // audio.HOP)
        if self.band == "paper":
            return audio.istft(mask * spec, len(mono) - margin_11k)[:core_11k, None]
        n_fft, hop = native_stft_params(sr)
        shift = margin / sr                 # the mask's frame 0 sits at the core's start
        vocals = np.empty((len(chunk) - 2 * margin, chunk.shape[1]), np.float32)
        for c in range(chunk.shape[1]):
            x = audio.spectrogram(chunk[:, c], n_fft, hop)
            m = interpolate_mask(mask, sr, x.shape[0], x.shape[1], hop, n_fft, self.extension, shift)
            full = audio.waveform(m * x, n_fft, hop, len(chunk))
            vocals[:, c] = full[margin:len(chunk) - margin]
        return vocals

    def run(self, source: AudioSource, write, progress=None) -> None:
        """Separate `source` chunk by chunk; write(vocals, accompaniment) receives consecutive blocks."""
        out_sr = audio.SAMPLE_RATE if self.band == "paper" else source.sr
        chunk = int(round(self.chunk_windows * WINDOW_SECONDS * source.sr))
        overlap = int(round(self.overlap_windows * WINDOW_SECONDS * source.sr))
        # STFT context beyond the block, a whole number of model hops (N_FFT / 2 at 11025 Hz)
        margin = int(round(audio.N_FFT // 2 * source.sr / audio.SAMPLE_RATE))
        out_total = int(round(source.frames * out_sr / source.sr)) if self.band == "paper" else source.frames
        scale = out_sr / source.sr
        fade = int(round(overlap * scale)) // 2     # centred in the overlap, away from chunk edges
        pending = None                    # the previous chunk's vocal/mixture tail awaiting its cross-fade
        written = 0
        for start in range(0, source.frames, chunk):
            last = start + chunk >= source.frames
            # Overlap only between chunks: the model would spend it on silence before and after the
            # song; the last chunk stops at the song's end (a short song is one short chunk).
            lead, tail = (overlap if start > 0 else 0), (0 if last else overlap)
            block = source.read(start - lead - margin, min(chunk, source.frames - start) + lead + tail + 2 * margin)
            vocals = self.separate_chunk(block, source.sr, margin)
            core = block[margin:len(block) - margin]
            mix = core if self.band == "full" else \
                audio.prepare_waveform(block, source.sr)[int(round(margin * scale)):][:len(vocals), None]
            n_out = min(len(vocals), int(round((lead + chunk + tail) * scale)))
            vocals, mix = vocals[:n_out], mix[:n_out]
            core_start = int(round(lead * scale))
            if pending is not None:        # cross-fade the overlap with the previous chunk's tail
                ramp = np.linspace(0.0, 1.0, 2 * fade, endpoint=False)[:, None] if fade else np.zeros((0, 1))
                head = vocals[core_start - fade:core_start + fade]
                n = min(len(head), len(pending))
                vocals[core_start - fade:core_start - fade + n] = pending[:n] * (1 - ramp[:n]) + head[:n] * ramp[:n]
            emit_end = n_out if last else int(round((lead + chunk) * scale)) - fade
            emit_start = core_start - fade if pending is not None else core_start
            block_vocals = vocals[emit_start:emit_end]
            block_mix = mix[emit_start:emit_end]
            take = min(len(block_vocals), out_total - written)
            if take > 0:
                write(block_vocals[:take], block_mix[:take] - block_vocals[:take])
                written += take
            pending = None if last else vocals[emit_end:emit_end + 2 * fade]
            if progress:
                progress(min(start + chunk, source.frames))
        if written < out_total:            # numerical rounding at the very end
            pad = np.zeros((out_total - written, 1 if self.band == "paper" else source.channels), np.float32)
            write(pad, pad)


# ---------------------------------------------------------------- writing
class StemWriters:
    """Writes vocals and accompaniment to NAME.partial.EXT, renamed when complete."""

    def __init__(self, paths: dict[str, Path], sr: int, channels: int, fmt: str):
        import soundfile as sf
        major, subtype = FORMATS[fmt]
        self.paths = paths
        self.partials = {k: p.with_name(p.stem + ".partial" + p.suffix) for k, p in paths.items()}
        for p in self.partials.values():
            p.parent.mkdir(parents=True, exist_ok=True)
        self.files = {k: sf.SoundFile(str(p), "w", samplerate=sr, channels=channels, format=major, subtype=subtype)
                      for k, p in self.partials.items()}

    def __call__(self, vocals: np.ndarray, accompaniment: np.ndarray) -> None:
        peak = 1.0 if self.files["vocals"].format == "WAV" else 0.999   # only float wav keeps > 0 dBFS
        self.files["vocals"].write(np.clip(vocals, -peak, peak))
        self.files["accompaniment"].write(np.clip(accompaniment, -peak, peak))

    def close(self, complete: bool) -> None:
        for f in self.files.values():
            f.close()
        for key, partial in self.partials.items():
            if complete:
                os.replace(partial, self.paths[key])
            else:
                partial.unlink(missing_ok=True)


def output_paths(song: Path, out: Path, template: str, fmt: str) -> dict[str, Path]:
    """Paths from a Spleeter-like template: {filename}, {instrument}, {codec}."""
    return {inst: out / template.format(filename=song.stem, instrument=inst, codec=fmt, foldername=song.parent.name)
            for inst in ("vocals", "accompaniment")}


def separate_file(song: Path, song_separator: SongSeparator, out: Path, template: str, fmt: str,
                  offset: float = 0.0, duration: float | None = None, on_progress=None) -> dict[str, Path]:
    """Separate one file and write both stems; returns their paths.

    Args:
        on_progress: optional callback receiving the fraction done (0..1).
    """
    from tqdm import tqdm
    source = AudioSource(song, offset, duration)
    paths = output_paths(song, out, template, fmt)
    sr = audio.SAMPLE_RATE if song_separator.band == "paper" else source.sr
    channels = 1 if song_separator.band == "paper" else source.channels
    try:
        writers = StemWriters(paths, sr, channels, fmt)
    except (OSError, RuntimeError) as exc:
        source.close()
        raise audio.AudioError(f"{out}: cannot write there ({exc}); choose another --out")
    complete = False
    try:
        with tqdm(total=source.frames / source.sr, unit="s", desc=song.name[:30], file=sys.stderr,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]") as bar:
            def progress(done: int) -> None:
                bar.update(done / source.sr - bar.n)
                if on_progress:
                    on_progress(done / source.frames)

            song_separator.run(source, writers, progress)
        complete = True
    finally:
        writers.close(complete)
        source.close()
    return paths


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Separate songs into vocals and accompaniment.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("songs", nargs="+", type=Path, help="audio files (mp3, wav, flac, ogg, m4a, ...)")
    p.add_argument("--run", type=Path, default=None,
                   help="run directory with config.json and best.weights.h5 (default: pretrained/, "
                        "else the newest complete run in results/runs)")
    p.add_argument("--out", type=Path, default=Path("separated"), help="output folder")
    p.add_argument("--format", choices=sorted(FORMATS), default="wav", help="output format")
    p.add_argument("--filename-format", default="{filename}/{instrument}.{codec}",
                   help="output path template under --out; fields {filename}, {foldername}, {instrument}, {codec}")
    p.add_argument("--offset", type=float, default=0.0, help="start this many seconds into each song")
    p.add_argument("--duration", type=float, default=None, help="separate at most this many seconds")
    p.add_argument("--band", choices=("full", "paper"), default="full",
                   help="full: input rate and channels, model mask on each channel's STFT; paper: 11025 Hz mono")
    p.add_argument("--mask-extension", choices=EXTENSIONS, default="average",
                   help="mask above 5.5 kHz for --band full: average = each frame's mean over 2.75-5.5 kHz, "
                        "zeros = no vocals up there, top = each frame's mask at 5.5 kHz carried upward")
    p.add_argument("--chunk-windows", type=int, default=20, help="model windows (2.97 s each) per chunk")
    p.add_argument("--batch-size", type=int, default=8, help="model windows per forward pass")
    args = p.parse_args(argv)

    # Keras imports scikit-learn (0.6-1.3 s of start-up here) only for its sklearn wrappers, which
    # separating never uses; a module set to None makes that optional import fail fast.
    sys.modules.setdefault("sklearn", None)
    run_dir = args.run or default_run()
    if run_dir is None:
        raise SystemExit("separate: no trained model found (no pretrained/ and no complete run in results/runs); "
                         "train one: python data_prep.py && python train.py --base-filters 16 --epochs 5")
    from separation import Separator
    try:
        separator = Separator.from_run(run_dir, batch_size=args.batch_size)
    except FileNotFoundError as exc:
        raise SystemExit(f"separate: {exc}")
    print(f"separate: model {run_dir}", file=sys.stderr)
    song_separator = SongSeparator(separator, args.band, args.chunk_windows, 1, args.mask_extension)
    started, done, failed, seconds = time.time(), 0, 0, 0.0
    for song in args.songs:
        t0 = time.time()
        try:
            paths = separate_file(song, song_separator, args.out, args.filename_format, args.format,
                                  args.offset, args.duration)
        except audio.AudioError as exc:
            print(f"separate: skipped {exc}", file=sys.stderr)
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


if __name__ == "__main__":
    main()
