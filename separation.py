"""Separating songs: the library behind separate.py, app.py, evaluate.py and the benchmarks.

    from separation import Separator
    separator = Separator.from_run()                          # pretrained/ by default
    stems = separator.separate(waveform, 44100)               # {"vocals": ..., "accompaniment": ...}
    paths = separator.separate_to_file("song.mp3", "separated")

Layers, from the model outwards:
    WindowModel     mixture magnitude windows -> vocal magnitude windows: the run's scaler
                    (statistics of each mixture window), the network, the inverse (targets.py),
                    in one traced graph with an open batch size
    SongSeparator   any length of audio in chunks of whole model windows with context margins
                    and a linear cross-fade; --band full turns the estimate into a mask on each
                    input channel's own STFT (input rate, channels and stereo image kept, mask
                    extended above 5.5 kHz); --band paper is the paper's 11025 Hz mono output
    Separator       a waveform or a file in, stems out (arrays, or files written atomically)
Cached test songs (evaluate.py) go through `separate_cached_song`: the paper's reconstruction,
vocal magnitude x mixture phase -> iSTFT (Nyquist row restored) -> the song's exact length.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import audio
import normalize
import runs
import scratch
import targets
from hardware import OPENVINO_PRECISION_VARIABLE

FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}
BANDS = ("full", "paper")
EXTENSIONS = ("average", "zeros", "top")
STEMS = ("vocals", "accompaniment")
WINDOW_SECONDS = audio.WINDOW_SAMPLES / audio.SAMPLE_RATE
DEFAULT_TEMPLATE = "{filename}/{instrument}.{codec}"
MAX_WIENER_ITERATIONS = 3           # more EM iterations only lost SDR (README, Wiener table)
DEFAULT_WIENER_ITERATIONS = 1       # for two-source models, chosen on the validation songs (README)
# What the model hears of a multichannel song (--band full), measured on the validation songs in
# README: "each" channel on its own, one mask per channel (both shipped models gain 0.13-0.2 dB
# vocals SDR over "mix", at 1.3-1.5x the time); the channels' "mix", one mask for all (the paper's
# mono input: fastest, so the fast model's own choice under issue 11's speed targets); or "both":
# each channel's estimate averaged with the mix's (the model runs channels + 1 times). A shipped
# model records its own choice (default_channels).
CHANNEL_MODES = ("each", "mix", "both")
DEFAULT_CHANNELS = "each"
SPEED_RANGE = (0.8, 1.25)             # test-time speeds: about -4..+4 semitones
SPEEDS_WHEN = ("always", "one-input", "mono")


# ---------------------------------------------------------------- the model on windows
class WindowModel:
    """A loaded model plus the normalization it was trained with: mixture windows in, vocal
    magnitude windows out.

    Args:
        model: a Keras model from model.build_unet / runs.load_run.
        norm, scaler, target: the run's settings (runs.RunSettings).
        batch_size: windows per forward pass.
    """

    def __init__(self, model, norm: str, scaler: str, target: str, batch_size: int = 8):
        import tensorflow as tf
        self.model, self.norm, self.scaler, self.target = model, norm, scaler, target
        self.batch_size = batch_size
        # Calling a tf.function uses both cores here; model.predict used about one. One signature
        # with an open batch size: a song's last, smaller batch does not trace the model again.
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        self._forward = tf.function(self._vocal_mag_graph, input_signature=[spec])

    def _vocal_mag_graph(self, mix):
        stats = normalize.fit(mix, self.norm, self.scaler)
        y = self.model(normalize.transform(mix, stats), training=False)
        return targets.vocal_estimate(y, mix, stats, self.target)

    @classmethod
    def from_run(cls, run_dir: str | Path, weights: str = "best", batch_size: int = 8) -> "WindowModel":
        net, config = runs.load_run(run_dir, weights)
        s = runs.RunSettings.from_config(config)
        window_model = cls(net, s.norm, s.scaler, s.target, batch_size)
        window_model.config, window_model.run_dir = config, Path(run_dir)
        return window_model

    backend = "keras"

    def forward(self, mix: np.ndarray) -> np.ndarray:
        return self._forward(mix).numpy()

    def source_mags(self, mix_mag: np.ndarray) -> np.ndarray:
        """Estimated magnitudes for mixture windows (n, N_BINS, WINDOW_FRAMES, 1): one channel per
        source the model estimates (targets.sources: vocals, and for two-source models the accompaniment)."""
        out = None
        for start in range(0, len(mix_mag), self.batch_size):
            est = self.forward(mix_mag[start:start + self.batch_size].astype(np.float32))
            if out is None:
                out = np.empty((len(mix_mag), *est.shape[1:]), np.float32)
            out[start:start + len(est)] = est
        return out

    def vocal_mag(self, mix_mag: np.ndarray) -> np.ndarray:
        """Estimated vocal magnitudes for mixture windows (n, N_BINS, WINDOW_FRAMES, 1)."""
        return self.source_mags(mix_mag)[..., :1]


class ExportedWindowModel(WindowModel):
    """The same window-level graph, exported by export.py and run without TensorFlow.

    backend "onnx": RUN/model.onnx through onnxruntime; "openvino": the same file through OpenVINO's
    CPU plugin, in the precision openvino_precision gives (bfloat16 where the CPU has bfloat16
    instructions: AVX512-BF16 or AMX); "tflite": RUN/model.tflite through LiteRT.
    The export holds the scaler, the network and the inverse, so nothing else of the run is needed
    but its config.json (for names and provenance).
    """

    def __init__(self, path: Path, backend: str, batch_size: int = 8):
        self.path, self.backend, self.batch_size = Path(path), backend, batch_size
        threads = os.cpu_count() or 1
        if backend == "onnx":
            import onnxruntime as ort
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.log_severity_level = 3
            # Idle pool threads spin by default, taking the CPU from the STFT work between batches
            # (on 2 cores: the 11025 Hz STFT ran 20x slower right after a model call).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name
        elif backend == "openvino":
            import openvino
            core = openvino.Core()
            # LATENCY: one stream using every core for each call, as separate.py makes one call at a time
            compiled = core.compile_model(core.read_model(str(path)), "CPU", {
                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": openvino_precision(core)})
            self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()   # "f32" or "bf16"
            self.request, self.output = compiled.create_infer_request(), compiled.output(0)
            # one infer request serves one call at a time (an onnxruntime session takes concurrent runs)
            self.request_lock = threading.Lock()
        else:
            from ai_edge_litert.interpreter import Interpreter
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.input_index = self.interpreter.get_input_details()[0]["index"]
            self.output_index = self.interpreter.get_output_details()[0]["index"]
            self.allocated_batch = None

    def forward(self, mix: np.ndarray) -> np.ndarray:
        if self.backend == "onnx":
            return self.session.run(None, {self.input_name: mix})[0]
        if self.backend == "openvino":
            with self.request_lock:
                return self.request.infer({0: mix})[self.output].copy()
        if self.allocated_batch != len(mix):       # the batch dimension is open: resize on change
            self.interpreter.resize_tensor_input(self.input_index, mix.shape)
            self.interpreter.allocate_tensors()
            self.allocated_batch = len(mix)
        self.interpreter.set_tensor(self.input_index, mix)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index).copy()


BACKENDS = ("auto", "keras", "onnx", "openvino", "tflite")
EXPORT_FILES = {"onnx": "model.onnx", "openvino": "model.onnx", "tflite": "model.tflite"}
# --backend auto: the first one installed with a current export. OpenVINO leads where it runs
# bfloat16 (AMX / AVX512-BF16: half onnxruntime's model time); where both run float32, onnxruntime's
# chain measured 4-16 % faster (README, "An AVX2-only CPU, emulated")
AUTO_ORDER_BF16 = ("openvino", "onnx", "tflite")
AUTO_ORDER_F32 = ("onnx", "openvino", "tflite")
RUNTIMES = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai_edge_litert"}
# OpenVINO's inference precision, from the environment variable OPENVINO_PRECISION_VARIABLE: "auto"
# (default) = bfloat16 on CPUs with bfloat16 instructions (same validation scores as float32,
# README), else float32
OPENVINO_PRECISIONS = ("auto", "f32", "bf16")   # the variable is hardware's: benchmark headers name it too


def openvino_precision(core) -> str:
    """The INFERENCE_PRECISION_HINT for this machine's CPU and OPENVINO_PRECISION_VARIABLE."""
    wanted = os.environ.get(OPENVINO_PRECISION_VARIABLE, "auto")
    if wanted not in OPENVINO_PRECISIONS:
        raise ValueError(f"{OPENVINO_PRECISION_VARIABLE} must be one of {OPENVINO_PRECISIONS}, not {wanted!r}")
    if wanted != "auto":
        return wanted
    return "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


def auto_order() -> tuple[str, ...]:
    """The backends --backend auto tries, in order, on this CPU (and OPENVINO_PRECISION_VARIABLE)."""
    import hardware
    wanted = os.environ.get(OPENVINO_PRECISION_VARIABLE, "auto")
    bfloat16 = wanted == "bf16" or (wanted == "auto" and hardware.has_fast_bfloat16())
    return AUTO_ORDER_BF16 if bfloat16 else AUTO_ORDER_F32


ONNX_OPSET = 17                        # the opset export.py (and bench/arch_speed.py) write ONNX graphs in
EXPORT_RECORD = "export.json"          # which weights each export was made from


def weights_digest(run_dir: Path, weights: str = "best") -> str:
    import hashlib
    return hashlib.sha1(runs.weights_file(run_dir, weights).read_bytes()).hexdigest()[:16]


def current_export(run_dir: Path, backend: str) -> Path | None:
    """RUN/model.<ext> if it exists and was exported from the run's present best weights."""
    import json
    path, record = Path(run_dir) / EXPORT_FILES[backend], Path(run_dir) / EXPORT_RECORD
    if not path.exists() or not record.exists():
        return None
    try:
        made_from = json.loads(record.read_text()).get(path.name, {}).get("weights_sha1")
    except ValueError:
        return None
    return path if made_from == weights_digest(run_dir) else None


def _importable(module: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_window_model(run_dir: str | Path, backend: str = "auto", batch_size: int = 8):
    """The run's window model on a backend.

    Args:
        run_dir: a run folder.
        backend: "keras" (TensorFlow), "onnx" (onnxruntime), "openvino" (OpenVINO, the same ONNX
            file), "tflite" (LiteRT), or "auto": the fastest one installed, auto_order(), then keras
            (bench/separate.py and bench/stages.py measure them), using an export only when it was
            made from the run's present weights.
    """
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    if backend == "auto":
        backend = next((b for b in auto_order() if _importable(RUNTIMES[b]) and current_export(run_dir, b)),
                       "keras")
    if backend == "keras":
        return WindowModel.from_run(run_dir, batch_size=batch_size)
    path = current_export(run_dir, backend)
    if path is None:
        raise runs.RunError(f"{run_dir}: no {EXPORT_FILES[backend]} made from its present weights; export it: "
                            f"python export.py {run_dir} --format {backend}")
    window_model = ExportedWindowModel(path, backend, batch_size)
    window_model.config, window_model.run_dir = config, run_dir
    return window_model


# ---------------------------------------------------------------- reading
# Decoded audio AudioSource holds in memory before it streams to a scratch WAV instead: about six
# minutes of 44.1 kHz stereo float32 (a 60-minute file stays within issue 11's 1 GB peak)
IN_MEMORY_BYTES = 128 << 20


class ShortRead(Exception):
    """A file held fewer samples than its header promised (a damaged or cut-off file)."""

    def __init__(self, path: Path, promised: int, decoded: int, sr: int):
        super().__init__(f"{path}: damaged or cut short: its header promises {promised / sr:.1f} s but only "
                         f"{decoded / sr:.1f} s decode")
        self.path, self.promised, self.decoded = path, promised, decoded


def _drain(held: list[np.ndarray], blocks) -> Iterator[np.ndarray]:
    """The held blocks, each let go once yielded, then the rest of `blocks`, one at a time."""
    while held:
        yield held.pop(0)
    yield from blocks


class AudioSource:
    """Random access to a decoded file without holding a long one in RAM (the interface
    SongSeparator reads).

    libsndfile formats are read in place; anything else (or, with decode=True, anything) is
    decoded by FFmpeg (PyAV in this process, else the ffmpeg program): held in memory up to
    IN_MEMORY_BYTES of decoded samples (a song), beyond that streamed to a temporary float WAV in
    the scratch folder and read in place the same way. A read that finds fewer samples than a
    header promised raises ShortRead.

    Args:
        path: the audio file.
        offset, duration: the range to read, in seconds (duration None = to the end).
        scratch: folder for the temporary decode (default: this process's scratch folder).
        decode: decode with FFmpeg even where libsndfile could read the file.
        isolate: decode in a child process (the ffmpeg program, else PyAV in a child Python), for
            files from strangers: a decoder crash cannot take the caller down.
    """

    def __init__(self, path: Path, offset: float = 0.0, duration: float | None = None,
                 scratch: Path | None = None, decode: bool = False, isolate: bool = False):
        import soundfile as sf
        self.path, self._tmp, self._sf, self._samples = audio.check_file(path), None, None, None
        self.scratch, self.isolate = scratch, isolate
        try:
            if decode:
                raise RuntimeError("decode requested")
            self._sf = sf.SoundFile(str(self.path))
            self.sr, self.channels = self._sf.samplerate, self._sf.channels
        except (sf.LibsndfileError, RuntimeError, TypeError):
            self._sf = None
            self._decode()
        total = len(self._samples) if self._samples is not None else self._sf.frames
        self.start = min(int(round(offset * self.sr)), total)
        end = total if duration is None else min(total, self.start + int(round(duration * self.sr)))
        self.frames = end - self.start
        if self.frames <= 0:
            self.close()
            raise audio.AudioError(f"{path}: no audio in the requested range (offset {offset} s)")

    def _decode(self) -> None:
        """Decode into memory (a song: no scratch file to write, sync and read back, 8 ms of a
        7-second song's 100) or, past IN_MEMORY_BYTES, to the scratch WAV (_decode_to_scratch)."""
        if not audio.has_pyav() or self.isolate:
            return self._decode_to_scratch()
        self.sr, blocks = audio.decode_blocks(self.path)
        held, size = [], 0
        for block in blocks:
            held.append(block)
            size += block.nbytes
            if size > IN_MEMORY_BYTES:      # a long recording: memory stays flat from here on
                return self._decode_to_scratch(held, blocks)
        self._samples = np.concatenate(held)
        self.channels = self._samples.shape[1]

    def _decode_to_scratch(self, held: list[np.ndarray] | None = None, blocks=None) -> None:
        """Decode to a temporary float WAV (RF64 past 4 GB) that libsndfile then reads in place, so
        memory stays flat whatever the song's length: the blocks PyAV already decoded (held, then the
        rest of `blocks`) where given, else PyAV in a child process (isolate), else the ffmpeg program
        (whose WAV header carries the rate and channels: no ffprobe run)."""
        import soundfile as sf
        self._tmp = tempfile.NamedTemporaryFile(suffix=".wav", delete=False, dir=self.scratch or scratch.scratch_dir())
        self._tmp.close()
        unreadable = audio.AudioError(f"{self.path}: not a readable audio file (ffmpeg could not decode an audio "
                                      "stream from it)")
        try:
            if held is not None:
                audio.write_wav_blocks(Path(self._tmp.name), self.sr, _drain(held, blocks))
            elif audio.has_pyav() and not (self.isolate and shutil.which("ffmpeg")):
                # an untrusted file is decoded in a child process (the ffmpeg program where there is one)
                audio.decode_to_wav_isolated(self.path, Path(self._tmp.name))
            else:
                self._run_ffmpeg()
            self._sf = sf.SoundFile(self._tmp.name)
            if self._sf.frames == 0:
                raise unreadable
        except (sf.LibsndfileError, RuntimeError):
            self.close()
            raise unreadable from None
        except BaseException:           # AudioError, Ctrl-C, or a bug: the scratch file goes either way
            self.close()
            raise
        self.sr, self.channels = self._sf.samplerate, self._sf.channels

    def _run_ffmpeg(self) -> None:
        import subprocess
        audio.require_ffmpeg()
        out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(self.path), "-map", "0:a:0",
                              "-acodec", "pcm_f32le", "-rf64", "auto", "-f", "wav", self._tmp.name],
                             capture_output=True)
        # A damaged file can decode partly with errors: what decoded is used (ShortRead logic does not
        # apply: this WAV header counts exactly the decoded samples).
        if out.returncode != 0 and Path(self._tmp.name).stat().st_size <= 44:
            raise RuntimeError

    def read(self, start: int, n: int) -> np.ndarray:
        """Samples [start, start + n) of the selected range, zero-padded outside it: (n, channels)."""
        out = np.zeros((n, self.channels), np.float32)
        lo, hi = max(start, 0), min(start + n, self.frames)
        if hi > lo and self._samples is not None:
            out[lo - start:hi - start] = self._samples[self.start + lo:self.start + hi]
        elif hi > lo:
            try:
                self._sf.seek(self.start + lo)
                data = self._sf.read(hi - lo, dtype="float32", always_2d=True)
            except (RuntimeError, ValueError) as exc:       # libsndfile: seek past the decodable end
                raise ShortRead(self.path, self.start + self.frames, self.start + lo, self.sr) from exc
            if len(data) < hi - lo:
                raise ShortRead(self.path, self.start + self.frames, self.start + lo + len(data), self.sr)
            out[lo - start:lo - start + len(data)] = data
        return out

    def close(self) -> None:
        self._samples = None
        if self._sf is not None:
            self._sf.close()
            self._sf = None
        if self._tmp is not None:
            Path(self._tmp.name).unlink(missing_ok=True)
            self._tmp = None


class ArraySource:
    """A waveform in memory behind AudioSource's interface.

    Args:
        waveform: (samples,) or (samples, channels).
        sr: its sample rate.
    """

    def __init__(self, waveform: np.ndarray, sr: int):
        wave = np.asarray(waveform, dtype=np.float32)
        self.wave = wave[:, None] if wave.ndim == 1 else wave
        if self.wave.ndim != 2 or len(self.wave) == 0:
            raise audio.AudioError(f"waveform of shape {np.shape(waveform)}: expected (samples,) or "
                                   "(samples, channels) with at least one sample")
        if not np.all(np.isfinite(self.wave)):
            raise audio.AudioError("waveform contains NaN or infinite samples")
        self.sr, self.channels, self.frames = int(sr), self.wave.shape[1], len(self.wave)

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((n, self.channels), np.float32)
        lo, hi = max(start, 0), min(start + n, self.frames)
        if hi > lo:
            out[lo - start:hi - start] = self.wave[lo:hi]
        return out

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- masks and Wiener filtering
def source_ratios(mix_mag: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Each source's estimate as a fraction of the mixture magnitude, clipped to [0, 1]: (2, bins, T).

    Args:
        mix_mag: (bins, T) mixture magnitude.
        estimates: (bins, T, S) the model's magnitudes; S = 1 (vocals only: the accompaniment's
            ratio is the complement) or 2 (vocals, accompaniment, each estimated on its own).
    """
    ratios = np.clip(np.divide(estimates, mix_mag[..., None], out=np.zeros_like(estimates),
                               where=mix_mag[..., None] > 1e-8), 0.0, 1.0)
    vocal = ratios[..., 0]
    return np.stack([vocal, 1.0 - vocal if ratios.shape[-1] == 1 else ratios[..., 1]])


def songs_source_mags(window_model, mix_mags: list[np.ndarray]) -> list[np.ndarray]:
    """song_source_mags of several (bins, T_i) mixtures, their windows in one pass through the model
    (a stereo chunk's channels: one batch instead of one per channel)."""
    cut = [audio.to_windows(m) for m in mix_mags]
    est = window_model.source_mags(np.concatenate([w for w, _ in cut])[..., None])
    out, start = [], 0
    for windows, valid in cut:
        part = est[start:start + len(windows)]
        start += len(windows)
        out.append(np.stack([audio.from_windows(part[..., j], valid) for j in range(part.shape[-1])], axis=-1))
    return out


def song_source_mags(window_model, mix_mag: np.ndarray, shifts: int = 1) -> np.ndarray:
    """(bins, T, S) source magnitudes of a whole (bins, T) mixture magnitude: cut into model windows
    (the last one zero-padded), estimated, joined back. shifts > 1 averages over that many window grids,
    each starting k * WINDOW_FRAMES / shifts frames later (bench/postfilter.py); frames before a
    grid's start are covered by the earlier grids."""
    starts = [k * audio.WINDOW_FRAMES // shifts for k in range(shifts)]
    grids = [songs_source_mags(window_model, [mix_mag[:, start:]])[0] for start in starts]
    if shifts == 1:
        return grids[0]
    total = np.zeros(grids[0].shape, np.float32)
    count = np.zeros(mix_mag.shape[1], np.float32)
    for start, grid in zip(starts, grids):
        total[:, start:] += grid
        count[start:] += 1
    return total / count[None, :, None]


def unplayed_ratios(ratios: np.ndarray, speed: float, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Ratios (2, bins, T_s) estimated on a song played `speed` times as fast, on the song's own grid
    of n_frames: its bin k and frame t lie at bin k * speed and frame t / speed of the played version
    (linear interpolation). Returns (2, bins, n_frames) ratios and the (bins, 1) weight of each bin:
    0 for the bins a faster version pushed above the model's band."""
    bins = np.arange(audio.N_BINS) * speed
    inside = bins <= audio.N_BINS - 1
    frames = np.minimum(np.arange(n_frames) / speed, ratios.shape[-1] - 1)
    in_time = _lerp(ratios.reshape(-1, ratios.shape[-1]), frames, axis=1).reshape(2, audio.N_BINS, n_frames)
    out = np.stack([_lerp(r, np.minimum(bins, audio.N_BINS - 1), axis=0) for r in in_time])
    return out, inside.astype(np.float32)[:, None]


def check_speeds(speeds) -> None:
    """Test-time speeds must include 1 (the song as it is) and lie in SPEED_RANGE."""
    if not speeds or 1 not in speeds or any(not SPEED_RANGE[0] <= s <= SPEED_RANGE[1] for s in speeds):
        raise ValueError(f"speeds must include 1 and lie within {SPEED_RANGE[0]}..{SPEED_RANGE[1]} "
                         f"(e.g. 1 0.944 1.059: -1..+1 semitone); got {list(speeds)}")


def soft_mask(ratios: np.ndarray) -> np.ndarray:
    """The vocals' soft mask V / (V + A) from source_ratios (|X| cancels): (bins, T), 0 where both are 0.
    For a vocals-only model it is the model's own clipped mask."""
    total = ratios[0] + ratios[1]
    return np.divide(ratios[0], total, out=np.zeros_like(total), where=total > 0)


def vocal_spectrum(mix_spec: np.ndarray, ratios: np.ndarray, wiener_iterations: int = 0) -> np.ndarray:
    """The vocals' complex STFT from the mixture's and the two sources' ratios on its grid.

    wiener_iterations 0: the soft mask V / (V + A) on every channel (for a vocals-only model this is
    its own mask, unchanged); N > 0: norbert's multichannel Wiener filter refined by N EM iterations
    (filtering.py: the same algorithm, vectorized), which estimates each source's stereo image
    (Open-Unmix's post-filter). The accompaniment is the
    mixture minus the vocals either way, so the stems always sum to the input.

    Args:
        mix_spec: (bins, T, channels) complex mixture STFT.
        ratios: (2, bins, T) from source_ratios (interpolated to this grid), the same for every
            channel, or (2, bins, T, channels): each channel's own.
        wiener_iterations: EM iterations (0 = soft mask only).
    """
    if ratios.ndim == 3:
        ratios = ratios[..., None]
    if wiener_iterations <= 0:
        return mix_spec * soft_mask(ratios)
    import filtering
    # The filter's sources V_j = r_j |X| enter only through its soft-mask start V_j / (eps + sum V),
    # where |X| cancels (up to eps): the ratios themselves save a product and a stack of every plane.
    v = np.moveaxis(ratios, 0, -1)                                                 # (bins, T, channels or 1, 2)
    return filtering.wiener(v, mix_spec, wiener_iterations, sources=[0])[..., 0].astype(np.complex64, copy=False)


# ---------------------------------------------------------------- the mask on the input's own STFT
def native_stft_params(sr: int) -> tuple[int, int]:
    """n_fft and hop giving (nearly) the model's bin spacing and hop time at sample rate sr."""
    ratio = sr / audio.SAMPLE_RATE
    n_fft = int(2 ** np.round(np.log2(audio.N_FFT * ratio)))
    return n_fft, max(1, int(round(audio.HOP * ratio)))


def _lerp(values: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """values linearly interpolated at fractional positions `index` along axis 0 or 1; positions
    that are all whole numbers (44.1 kHz input: the native grid is the model's) are a plain take."""
    lo = np.floor(index).astype(int)
    frac = (index - lo).astype(np.float32)
    if not frac.any():
        return np.take(values, lo, axis=axis)
    hi = np.minimum(lo + 1, values.shape[axis] - 1)
    frac = frac[:, None] if axis == 0 else frac[None, :]
    return np.take(values, lo, axis=axis) * (1 - frac) + np.take(values, hi, axis=axis) * frac


def native_mask_parts(mask: np.ndarray, sr: int, n_bins: int, n_frames: int, hop: int, n_fft: int,
                      extension: str, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A (N_BINS, T) mask on the model's grid on a native STFT grid of n_bins x n_frames whose frame 0
    lies `shift` seconds before the mask's frame 0, in two parts: (k, n_frames) for the k lowest bins,
    those within the model's band, and the (1, n_frames) row every bin above them gets (extension)."""
    model_freqs = np.arange(audio.N_BINS) * audio.SAMPLE_RATE / audio.N_FFT
    model_times = np.arange(mask.shape[1]) * audio.HOP / audio.SAMPLE_RATE
    freqs = np.arange(n_bins) * sr / n_fft
    times = np.arange(n_frames) * hop / sr - shift
    # time first (cheap at 512 rows), then frequency
    in_time = _lerp(mask, np.interp(times, model_times, np.arange(len(model_times))), axis=1)
    band_freqs = freqs[freqs <= model_freqs[-1]]
    below = _lerp(in_time, np.interp(band_freqs, model_freqs, np.arange(audio.N_BINS)), axis=0)
    if extension == "zeros":
        above = np.zeros((1, n_frames), np.float32)
    elif extension == "average":
        above = in_time[audio.N_BINS // 2:].mean(axis=0, keepdims=True)
    else:                       # "top": each frame's mask at 5.5 kHz carried upward
        above = in_time[-1:]
    return below.astype(np.float32, copy=False), above.astype(np.float32, copy=False)


def interpolate_mask(mask: np.ndarray, sr: int, n_bins: int, n_frames: int, hop: int, n_fft: int,
                     extension: str, shift: float = 0.0) -> np.ndarray:
    """native_mask_parts as one (n_bins, n_frames) array."""
    below, above = native_mask_parts(mask, sr, n_bins, n_frames, hop, n_fft, extension, shift)
    out = np.empty((n_bins, n_frames), np.float32)
    out[:len(below)], out[len(below):] = below, above
    return out


def apply_native_mask(specs: list[np.ndarray], mask: np.ndarray, sr: int, hop: int, n_fft: int,
                      extension: str, shift: float = 0.0, start_bin: int = 0) -> None:
    """Multiply each (bins, T) complex STFT of `specs` in place, from start_bin up, by `mask`
    interpolated once onto their grid; the bins above the model's band by one broadcast row."""
    below, above = native_mask_parts(mask, sr, *specs[0].shape, hop, n_fft, extension, shift)
    top = len(below)
    for x in specs:
        if start_bin < top:
            x[start_bin:top] *= below[start_bin:]
        x[max(top, start_bin):] *= above


class SongSeparator:
    """Chunked separation of long audio with a WindowModel.

    Args:
        separator: the loaded WindowModel.
        band: "full" (input rate and channels) or "paper" (11025 Hz mono).
        chunk_windows: model windows per chunk (a chunk is about chunk_windows x 2.97 s).
        overlap_windows: model windows of context on each side, cross-faded.
        extension: mask rule above 5.5 kHz for band "full".
        phase: "mixture" (the mixture's phase, default) or "griffin-lim" (estimated, report 001).
        wiener_iterations: 0 = soft masks; N = multichannel Wiener filter with N EM iterations.
        channels: for band "full", "each" input channel through the model on its own (a mask per
            channel), their "mix" (one mask for all), or "both" (each channel's ratios averaged with
            the mix's); band "paper" is mono in every mode.
        speeds: test-time augmentation: the model also hears the song played at these speeds (like a
            tape, audio.played_at), and the ratios, mapped back (unplayed_ratios), are averaged; (1,) = off.
        speeds_when: "always"; "one-input": only where the model hears one input (a mono song, the
            channels' mix, band paper), not each channel of a stereo one, where the channels already
            are two views; "mono": only for mono songs (SPEEDS_WHEN; README, Separating songs).
    """

    def __init__(self, separator, band: str = "full", chunk_windows: int = 20, overlap_windows: int = 1,
                 extension: str = "average", phase: str = "mixture", wiener_iterations: int = 0,
                 channels: str = DEFAULT_CHANNELS, speeds: tuple[float, ...] = (1.0,),
                 speeds_when: str = "always"):
        if channels not in CHANNEL_MODES:
            raise ValueError(f"channels must be one of {CHANNEL_MODES}, not {channels!r}")
        if speeds_when not in SPEEDS_WHEN:
            raise ValueError(f"speeds_when must be one of {SPEEDS_WHEN}, not {speeds_when!r}")
        check_speeds(speeds)
        self.speeds, self.speeds_when = tuple(float(s) for s in speeds), speeds_when
        self.separator, self.band, self.extension = separator, band, extension
        self.chunk_windows, self.overlap_windows, self.phase = chunk_windows, overlap_windows, phase
        self.wiener_iterations, self.channels = wiener_iterations, channels

    def speeds_for(self, n_inputs: int, n_channels: int) -> tuple[float, ...]:
        """The test-time speeds for a chunk of n_channels channels that the model hears as n_inputs waveforms."""
        applies = {"always": True, "one-input": n_inputs == 1, "mono": n_channels == 1}[self.speeds_when]
        return self.speeds if applies else (1.0,)

    def _paper_ratios(self, waves_11k: list[np.ndarray], margin_frames: int,
                      speeds: tuple[float, ...] = (1.0,)) -> tuple[np.ndarray, list[np.ndarray]]:
        """(source ratios (2, bins, T, inputs), mixture spectrograms) of 11025 Hz mono waveforms of one
        length, in the model's domain, without the first margin_frames frames.

        The margin gives the window-aligned frames real signal on both sides: a frame half
        made of the block's zero padding would shift its window's min/max statistics.
        """
        specs = [audio.stft(x) for x in waves_11k]
        mags = [np.abs(spec[:, margin_frames:]) for spec in specs]
        others = [s for s in speeds if s != 1]
        # every input at every speed in one pass through the model; the played versions keep their
        # margin until they are mapped back onto the input's frames
        played = [np.abs(audio.stft(audio.played_at(x, s))) for s in others for x in waves_11k]
        estimates = songs_source_mags(self.separator, mags + played)
        ratios = [source_ratios(m, est) for m, est in zip(mags + played, estimates)]
        if others:
            total, weight = ratios[:len(mags)], np.ones((audio.N_BINS, 1), np.float32)
            for k, speed in enumerate(others):
                for i, spec in enumerate(specs):
                    back, inside = unplayed_ratios(ratios[len(mags) * (k + 1) + i], speed, spec.shape[1])
                    total[i] = total[i] + back[..., margin_frames:] * inside
                weight = weight + inside
            ratios = [r / weight for r in total]
        return np.stack(ratios, axis=-1), [x[:, margin_frames:] for x in specs]

    def separate_chunk(self, chunk: np.ndarray, sr: int, margin: int = 0) -> np.ndarray:
        """Vocals of chunk[margin:len-margin] (samples, channels) at sr, or of its 11025 Hz mono
        version (band paper); the margins are context only."""
        margin_11k = int(round(margin * audio.SAMPLE_RATE / sr))
        if self.band == "paper":
            mono = audio.prepare_waveform(chunk, sr)
            core_11k = int(round((len(chunk) - 2 * margin) * audio.SAMPLE_RATE / sr))
            ratios, (spec,) = self._paper_ratios([mono], margin_11k // audio.HOP, self.speeds_for(1, chunk.shape[1]))
            vocal = vocal_spectrum(spec[..., None], ratios, self.wiener_iterations)[..., 0]
            if self.phase == "griffin-lim":
                return audio.reconstruct(np.abs(vocal), None, len(mono) - margin_11k, self.phase)[:core_11k, None]
            return audio.istft(vocal, len(mono) - margin_11k)[:core_11k, None]
        if self.channels == "mix" or chunk.shape[1] == 1:
            heard = [audio.prepare_waveform(chunk, sr)]
        else:
            channels_11k = audio.resample(chunk, sr)          # all channels in one pass
            heard = [channels_11k[:, c] for c in range(chunk.shape[1])]
            heard += [audio.to_mono(channels_11k)] if self.channels == "both" else []
        # (2, bins, T, 1 or channels): the sources' ratios on the model's grid, per input heard
        ratios = self._paper_ratios(heard, margin_11k // audio.HOP, self.speeds_for(len(heard), chunk.shape[1]))[0]
        if self.channels == "both" and chunk.shape[1] > 1:   # each channel's ratios averaged with the mix's
            ratios = (ratios[..., :-1] + ratios[..., -1:]) / 2
        n_fft, hop = native_stft_params(sr)
        shift = margin / sr                 # the ratios' frame 0 sits at the core's start
        specs = [audio.spectrogram(chunk[:, c], n_fft, hop) for c in range(chunk.shape[1])]
        band = 0                            # bins already separated; the soft mask does the rest
        if self.wiener_iterations > 0:
            # Wiener filtering in the model's band (above 5.5 kHz the ratios are an extrapolation, and
            # the EM's cost grows with every bin); the soft mask above it
            band = int(np.sum(np.arange(specs[0].shape[0]) * sr / n_fft <= audio.SAMPLE_RATE / 2))
            native = np.stack([np.stack([interpolate_mask(r[..., k], sr, band, specs[0].shape[1], hop, n_fft,
                                                          self.extension, shift) for k in range(r.shape[-1])], axis=-1)
                               for r in ratios])
            filtered = vocal_spectrum(np.stack([x[:band] for x in specs], axis=-1), native, self.wiener_iterations)
            for c, x in enumerate(specs):
                x[:band] = filtered[..., c]
        masks = soft_mask(ratios)
        # one interpolation for all channels when they share a mask
        groups = [(specs, masks[..., 0])] if masks.shape[-1] == 1 else \
            [([x], masks[..., c]) for c, x in enumerate(specs)]
        for group, mask in groups:
            apply_native_mask(group, mask, sr, hop, n_fft, self.extension, shift, band)
        vocals = np.empty((len(chunk) - 2 * margin, chunk.shape[1]), np.float32)
        for c, x in enumerate(specs):
            full = audio.griffin_lim(np.abs(x), n_fft, hop, len(chunk)) if self.phase == "griffin-lim" else \
                audio.waveform(x, n_fft, hop, len(chunk))
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
            scratch.raise_if_terminated()
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
    """Writes vocals and accompaniment to NAME.partial.EXT, renamed when complete; an incomplete
    run leaves nothing behind (partials deleted, folders it made removed when empty)."""

    def __init__(self, paths: dict[str, Path], sr: int, channels: int, fmt: str):
        major, subtype = FORMATS[fmt]
        self.paths, self.files = paths, {}
        self.partials = {k: p.with_name(p.stem + ".partial" + p.suffix) for k, p in paths.items()}
        self.made_dirs: list[Path] = []
        try:
            for p in self.partials.values():
                missing = [d for d in [p.parent, *p.parent.parents] if not d.exists()]
                p.parent.mkdir(parents=True, exist_ok=True)
                self.made_dirs += [d for d in missing if d not in self.made_dirs]
            for k, p in self.partials.items():
                self.files[k] = audio.unsynced_sound_file(p, "w", samplerate=sr, channels=channels, format=major,
                                                          subtype=subtype)
        except BaseException:
            self.close(complete=False)
            raise

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
        if not complete:
            for folder in sorted(self.made_dirs, key=lambda d: len(d.parts), reverse=True):
                try:
                    folder.rmdir()          # only if empty: never deletes what was there before
                except OSError:
                    pass


def output_paths(song: Path, out: Path, template: str, fmt: str) -> dict[str, Path]:
    """Paths from a Spleeter-like template: {filename}, {foldername}, {instrument}, {codec}.

    Names taken from the input file are sanitized (audio.safe_name), so a song called '...wav' or
    '..' cannot place its stems outside `out`.
    """
    paths = {inst: out / template.format(filename=audio.safe_name(song.stem), instrument=inst, codec=fmt,
                                         foldername=audio.safe_name(song.resolve().parent.name))
             for inst in STEMS}
    root = out.resolve()
    for path in paths.values():
        if not path.resolve().is_relative_to(root):
            raise audio.AudioError(f"{song}: its stems would be written outside {out} ({path}); "
                                   "use another --filename-format")
    return paths


# ---------------------------------------------------------------- the API
def default_wiener_iterations(config: dict | None) -> int:
    """The post-filter a model gets unless the user chooses: DEFAULT_WIENER_ITERATIONS for a model
    that estimates vocals and accompaniment each on its own, 0 (its soft mask) for a vocals-only
    model, whose Wiener filter is only a sharper mask (README: at most +0.06 dB, at a third of the speed).
    A shipped model whose own choice was measured carries it in its config.json ("separation", set by
    bench/ship.py --wiener-iterations)."""
    if not config:
        return 0
    chosen = config.get("separation", {}).get("wiener_iterations")
    if chosen is not None:
        return int(chosen)
    target = runs.RunSettings.from_config(config).target
    return DEFAULT_WIENER_ITERATIONS if len(targets.sources(target)) == 2 else 0


def default_speeds(config: dict | None) -> tuple[tuple[float, ...], str]:
    """Test-time speeds a model gets unless the user chooses, and when (SPEEDS_WHEN): its measured
    choice ("separation" in its config.json, set by bench/ship.py --speeds --speeds-when), else none (1)."""
    chosen = (config or {}).get("separation", {})
    return tuple(chosen.get("speeds") or (1.0,)), chosen.get("speeds_when", "always")


def default_channels(config: dict | None) -> str:
    """What the model hears of a stereo song unless the user chooses: the shipped model's own measured
    choice ("separation" in its config.json, set by bench/ship.py --channels), else DEFAULT_CHANNELS."""
    chosen = (config or {}).get("separation", {}).get("channels")
    return chosen if chosen in CHANNEL_MODES else DEFAULT_CHANNELS


class Separator:
    """Vocals and accompaniment from a waveform or a file, with a trained run (like Spleeter's).

    Args:
        window_model: the loaded model (WindowModel.from_run).
        band: "full" (input rate and channels) or "paper" (11025 Hz mono).
        extension: mask rule above 5.5 kHz for band "full" (EXTENSIONS).
        chunk_windows: model windows per chunk (bounded memory for any length).
        phase: "mixture" or "griffin-lim" (audio.PHASES).
        wiener_iterations: 0 = soft masks; N = multichannel Wiener filter with N EM iterations (norbert);
            None = default_wiener_iterations of the model.
        channels: band "full": "each" channel through the model on its own, their "mix", or "both" (CHANNEL_MODES);
            None = default_channels of the model.
        speeds: test-time speeds the model also hears the song at, estimates averaged (SongSeparator),
            for every input; None = default_speeds of the model (with its own speeds_when).
    """

    def __init__(self, window_model: WindowModel, band: str = "full", extension: str = "average",
                 chunk_windows: int = 20, phase: str = "mixture", wiener_iterations: int | None = None,
                 channels: str | None = None, speeds: tuple[float, ...] | None = None):
        import hardware
        hardware.reuse_freed_memory()       # every chunk reallocates the same large arrays
        hardware.one_blas_thread()          # spinning OpenBLAS workers halved the model's speed
        self.window_model = window_model
        config = getattr(window_model, "config", None)
        if wiener_iterations is None:
            wiener_iterations = default_wiener_iterations(config)
        if channels is None:
            channels = default_channels(config)
        speeds, speeds_when = default_speeds(config) if speeds is None else (speeds, "always")
        self.song_separator = SongSeparator(window_model, band, chunk_windows, 1, extension, phase,
                                            wiener_iterations, channels, speeds, speeds_when)

    @classmethod
    def from_run(cls, run_dir: str | Path | None = None, band: str = "full", extension: str = "average",
                 chunk_windows: int = 20, batch_size: int = 8, backend: str = "auto",
                 phase: str = "mixture", wiener_iterations: int | None = None,
                 channels: str | None = None, speeds: tuple[float, ...] | None = None) -> "Separator":
        """Load a run (default: pretrained/, else the newest complete run) on a backend (BACKENDS)."""
        run_dir = run_dir or runs.default_run()
        if run_dir is None:
            raise runs.RunError("no trained model found (no pretrained/ and no complete run in results/runs); "
                                "train one: python data_prep.py && python train.py --base-filters 16 --epochs 5")
        return cls(load_window_model(run_dir, backend, batch_size), band, extension, chunk_windows, phase,
                   wiener_iterations, channels, speeds)

    @property
    def backend(self) -> str:
        return self.window_model.backend

    @property
    def run_dir(self) -> Path:
        return self.window_model.run_dir

    @property
    def config(self) -> dict:
        return self.window_model.config

    @property
    def band(self) -> str:
        return self.song_separator.band

    def separate(self, waveform: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """Stems of an in-memory waveform.

        Args:
            waveform: (samples,) or (samples, channels), float.
            sample_rate: its rate in Hz.
        Returns:
            {"vocals": ..., "accompaniment": ...}, each shaped like the input (band "full") or
            (samples_11025,) mono at 11025 Hz (band "paper").
        """
        source = ArraySource(waveform, sample_rate)
        blocks = {stem: [] for stem in STEMS}

        def collect(vocals: np.ndarray, accompaniment: np.ndarray) -> None:
            blocks["vocals"].append(vocals)
            blocks["accompaniment"].append(accompaniment)

        self.song_separator.run(source, collect)
        stems = {k: np.concatenate(v) for k, v in blocks.items()}
        if np.ndim(waveform) == 1 or self.band == "paper":
            stems = {k: v[:, 0] for k, v in stems.items()}
        return stems

    def output_sample_rate(self, input_rate: int) -> int:
        return audio.SAMPLE_RATE if self.band == "paper" else input_rate

    def separate_to_file(self, path: str | Path, out_dir: str | Path = "separated",
                         filename_format: str = DEFAULT_TEMPLATE, codec: str = "wav", offset: float = 0.0,
                         duration: float | None = None, on_progress=None, progress_bar: bool = False,
                         scratch: Path | None = None, on_warning=None, isolate: bool = False) -> dict[str, Path]:
        """Separate one file and write both stems (NAME.partial.EXT renamed when complete).

        Args:
            path: any file libsndfile or ffmpeg reads.
            out_dir: output folder; filename_format places the stems under it.
            codec: wav, flac, ogg or mp3.
            offset, duration: seconds to skip, seconds to separate (None = to the end).
            on_progress: optional callback receiving the fraction done (0..1).
            progress_bar: show a tqdm bar on stderr.
            scratch: folder for temporary decodes (default: this process's scratch folder).
            on_warning: callback for a one-line warning (a damaged file read as far as it decodes);
                default: printed to stderr.
            isolate: decode formats libsndfile cannot read in a child process (untrusted files).
        Returns:
            {"vocals": path, "accompaniment": path}.
        """
        song, out = Path(path), Path(out_dir)
        paths = output_paths(song, out, filename_format, codec)
        try:
            self._to_file(AudioSource(song, offset, duration, scratch, isolate=isolate), paths, codec, on_progress,
                          progress_bar)
        except ShortRead as exc:
            # The header lied (a cut-off mp3, say): decode what is really there and start again.
            source = AudioSource(song, offset, duration, scratch, decode=True, isolate=isolate)
            message = (f"{exc}; separating the {source.frames / source.sr:.1f} s that decode")
            (on_warning or (lambda text: print(f"warning: {text}", file=sys.stderr)))(message)
            self._to_file(source, paths, codec, on_progress, progress_bar)
        return paths

    def _to_file(self, source, paths: dict[str, Path], codec: str, on_progress, progress_bar: bool) -> None:
        """Separate an open source into stem files; the source is closed whatever happens."""
        from tqdm import tqdm
        song, out = source.path, paths["vocals"].parent
        channels = 1 if self.band == "paper" else source.channels
        try:
            writers = StemWriters(paths, self.output_sample_rate(source.sr), channels, codec)
        except (OSError, RuntimeError) as exc:
            source.close()
            raise audio.AudioError(f"{out}: cannot write there ({exc}); choose another --out")
        complete = False
        try:
            with tqdm(total=source.frames / source.sr, unit="s", desc=song.name[:30], file=sys.stderr,
                      disable=not progress_bar,
                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]") as bar:
                def progress(done: int) -> None:
                    bar.update(done / source.sr - bar.n)
                    if on_progress:
                        on_progress(done / source.frames)

                self.song_separator.run(source, writers, progress)
            scratch.raise_if_terminated()      # stems finished after a SIGTERM are not kept either
            complete = True
        finally:
            writers.close(complete)
            source.close()


# ---------------------------------------------------------------- cached test songs (evaluate.py)
def windows_to_wave(mag_windows: np.ndarray, phase_windows: np.ndarray, valid_frames: np.ndarray,
                    length: int, phase: str = "mixture") -> np.ndarray:
    """Magnitude and phase windows of one song -> its waveform at SAMPLE_RATE, exact length
    (phase "griffin-lim": the phase windows are ignored and estimated instead)."""
    return audio.reconstruct(audio.from_windows(mag_windows, valid_frames),
                             audio.from_windows(phase_windows, valid_frames), length, phase)


def windows_to_spec(mag_windows: np.ndarray, phase_windows: np.ndarray, valid_frames: np.ndarray) -> np.ndarray:
    """Magnitude and phase windows of one song -> its complex STFT at SAMPLE_RATE (bins, frames)."""
    return audio.from_windows(mag_windows, valid_frames) * np.exp(1j * audio.from_windows(phase_windows, valid_frames))


def separate_cached_song(store, song: int, separator: Separator, phase: str = "mixture",
                         wiener_iterations: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vocal magnitude windows, vocal waveform) of a song in a cache.

    A vocals-only model without Wiener filtering keeps the paper's chain exactly (its own vocal
    magnitude, unclipped, with the mixture's phase); two-source models and Wiener filtering go
    through vocal_spectrum on the song's 11025 Hz mono STFT.
    """
    mix_mag, mix_phase = store.read_song("mix_mag", song), store.read_song("mix_phase", song)
    estimates = separator.source_mags(mix_mag)
    valid = store.valid_frames[store.song_id == song]
    length = store.songs["length"][song]
    if estimates.shape[-1] == 1 and wiener_iterations <= 0:
        return estimates, windows_to_wave(estimates, mix_phase, valid, length, phase)
    mix_spec = windows_to_spec(mix_mag, mix_phase, valid)
    per_source = np.stack([audio.from_windows(estimates[..., k], valid) for k in range(estimates.shape[-1])], axis=-1)
    vocal = vocal_spectrum(mix_spec[..., None], source_ratios(np.abs(mix_spec), per_source), wiener_iterations)[..., 0]
    vocal_windows = audio.to_windows(np.abs(vocal))[0][..., None].astype(np.float32)
    wave = audio.istft(vocal, length) if phase == "mixture" else audio.reconstruct(np.abs(vocal), None, length, phase)
    return vocal_windows, wave
