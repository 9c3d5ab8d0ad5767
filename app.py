"""A web page for separating songs: upload, watch progress, listen, download, see spectrograms.

    python app.py                         # http://127.0.0.1:8000, the shipped models (fast, quality)
    python app.py --run results/runs/frequency-minmax-mae --port 8080
    python app.py --run pretrained results/runs/frequency-minmax-mae    # the page offers both

Served by uvicorn (an ASGI server) on 127.0.0.1 only. Uploads are limited in size and length,
non-audio files are rejected with a message, several uploads are separated one after another
by a single model worker while the page polls their progress, client file names never become
paths (every file lives under a random job id), and job folders are deleted after --keep-minutes
and when the server stops.
"""
from __future__ import annotations

import argparse
import asyncio
import html
import re
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import audio
from separation import DEFAULT_WIENER_ITERATIONS, MAX_WIENER_ITERATIONS, STEMS

MAX_MB = 50
MAX_MINUTES = 12.0
KEEP_MINUTES = 30.0
MULTIPART_SLACK = 64 * 1024     # form boundaries and part headers around the file itself
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
UPLOAD_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".aiff", ".aif", ".opus", ".webm", ".mp4"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vocal separator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#222}
 h1{font-size:1.5em} .box{border:1px solid #ccc;border-radius:8px;padding:1em;margin:1em 0}
 progress{width:100%;height:1.2em} #error{color:#b00020;font-weight:600} .muted{color:#666;font-size:.9em}
 audio{width:100%} img{max-width:100%;border:1px solid #ddd} a.dl{margin-right:1.5em}
</style></head><body>
<h1>Vocal separator</h1>
<p class="muted">U-Net from "Spectral Mapping of Singing Voices" &middot;
up to {max_mb} MB and {max_minutes} minutes per song (mp3, wav, flac, ogg, m4a).</p>
<form id="form" class="box">
 <input type="file" id="file" name="file" accept="audio/*">
 <label class="muted">model <select id="model">{model_options}</select></label>
 <label class="muted">post-filter <select id="wiener">{wiener_options}</select></label>
 <button type="submit" id="go">Separate</button>
</form>
<div id="status" class="box" hidden><div id="stage">Uploading&hellip;</div><progress id="bar" max="1" value="0"></progress></div>
<div id="error" role="alert"></div>
<div id="result" class="box" hidden>
 <h2>Vocals</h2><audio id="vocals" controls></audio>
 <h2>Accompaniment</h2><audio id="accompaniment" controls></audio>
 <p><a class="dl" id="dl-vocals" download>Download vocals</a><a class="dl" id="dl-accompaniment" download>Download accompaniment</a></p>
 <img id="spectrogram" alt="mixture and vocal spectrograms">
</div>
<script>
const $ = id => document.getElementById(id);
$("model").addEventListener("change", () => { $("wiener").value = $("model").selectedOptions[0].dataset.wiener; });
$("form").addEventListener("submit", ev => {
  ev.preventDefault();
  const file = $("file").files[0];
  $("error").textContent = ""; $("result").hidden = true;
  if (!file) { $("error").textContent = "Choose an audio file first."; return; }
  const data = new FormData(); data.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "api/jobs?wiener=" + $("wiener").value + "&model=" + encodeURIComponent($("model").value));
  $("status").hidden = false; $("stage").textContent = "Uploading…"; $("go").disabled = true;
  xhr.upload.onprogress = e => { if (e.lengthComputable) $("bar").value = e.loaded / e.total; };
  xhr.onload = () => {
    let body = {}; try { body = JSON.parse(xhr.responseText); } catch (e) {}
    if (xhr.status !== 200) { fail(body.error || ("Upload failed (" + xhr.status + ")")); return; }
    poll(body.id);
  };
  xhr.onerror = () => fail("Upload failed: the server did not answer.");
  xhr.send(data);
});
function fail(message) { $("error").textContent = message; $("status").hidden = true; $("go").disabled = false; }
function poll(id) {
  fetch("api/jobs/" + id).then(r => r.json()).then(job => {
    if (job.status === "error") { fail(job.error); return; }
    $("stage").textContent = job.status === "queued" ? "Waiting for the separator…" :
      job.status === "done" ? (job.warning ? "Done. Note: " + job.warning : "Done.") :
      "Separating… " + Math.round(100 * job.progress) + "%";
    $("bar").value = job.progress;
    if (job.status !== "done") { setTimeout(() => poll(id), 400); return; }
    for (const stem of ["vocals", "accompaniment"]) {
      const url = "api/jobs/" + id + "/" + stem + ".wav";
      $(stem).src = url; $("dl-" + stem).href = url; $("dl-" + stem).download = job.name + " - " + stem + ".wav";
    }
    $("spectrogram").src = "api/jobs/" + id + "/spectrogram.png";
    $("result").hidden = false; $("go").disabled = false;
  }).catch(() => setTimeout(() => poll(id), 1000));
}
</script></body></html>"""


@dataclass
class Job:
    id: str
    name: str                     # display name only; never used as a path
    folder: Path
    status: str = "queued"
    progress: float = 0.0
    error: str = ""
    warning: str = ""
    created: float = field(default_factory=time.time)
    wiener_iterations: int = 0
    model: str = ""


class Service:
    """Jobs, the model worker and the clean-up; shared by the ASGI app's routes."""

    def __init__(self, run_dirs: dict[str, Path], work_dir: Path, max_mb: float, max_minutes: float,
                 keep_minutes: float, wiener_iterations: int | None = None):
        from separation import Separator
        # every offered model is loaded once; the first is the page's default. Each model's post-filter
        # default is its own unless given
        self.separators = {name: Separator.from_run(run_dir, band="full", wiener_iterations=wiener_iterations)
                           for name, run_dir in run_dirs.items()}
        self.default_model = next(iter(self.separators))
        # each model's own default post-filter, kept apart: a job sets its separator's choice
        self.default_wiener = {name: s.song_separator.wiener_iterations for name, s in self.separators.items()}
        self.model_labels = {}
        for name, separator in self.separators.items():
            run_name = separator.config["name"]
            self.model_labels[name] = name if name == run_name else f"{name} ({run_name})"
        self.work_dir, self.max_bytes = work_dir, int(max_mb * 2 ** 20)
        self.max_seconds, self.keep_seconds = max_minutes * 60, keep_minutes * 60
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="separator")   # one job at a time

    def new_job(self, client_name: str) -> Job:
        job_id = uuid.uuid4().hex
        folder = self.work_dir / job_id
        folder.mkdir(parents=True)
        name = re.sub(r"[^\w .()-]+", "_", Path(client_name or "song").stem)[:80] or "song"
        job = Job(job_id, name, folder)
        with self.lock:
            self.jobs[job_id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.match(job_id):
            return None
        with self.lock:
            return self.jobs.get(job_id)

    def drop(self, job: Job) -> None:
        with self.lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def check_upload(self, upload: Path) -> str:
        """An error message for an unusable upload, or ''. Reads the length without decoding."""
        try:
            seconds = audio.duration(upload)
        except audio.AudioError:
            return "That file is not audio this server can read (try mp3, wav, flac, ogg or m4a)."
        if seconds > self.max_seconds:
            return f"The song is {seconds / 60:.1f} minutes long; the limit is {self.max_seconds / 60:g} minutes."
        if seconds < 0.5:
            return "The file holds less than half a second of audio."
        return ""

    def separate(self, job: Job, upload: Path) -> None:
        """Runs on the worker thread."""
        job.status = "separating"
        # one worker thread runs the jobs in turn, so the shared separator can take each job's choice
        separator = self.separators[job.model]
        separator.song_separator.wiener_iterations = job.wiener_iterations
        try:
            separator.separate_to_file(upload, job.folder, "{instrument}.{codec}", "wav", scratch=job.folder,
                                            on_progress=lambda fraction: setattr(job, "progress", min(0.99, fraction)),
                                            on_warning=lambda text: setattr(job, "warning", text),
                                            isolate=True)      # an upload is a stranger's file
            self.spectrogram(job)
            job.progress, job.status = 1.0, "done"
        except audio.AudioError as exc:    # the page shows it; the server keeps going
            job.status, job.error = "error", f"Separation failed: {str(exc).replace(str(upload), job.name)}"
        except Exception as exc:
            job.status, job.error = "error", f"Separation failed: unexpected {type(exc).__name__}; try another file"
        finally:
            upload.unlink(missing_ok=True)

    def spectrogram(self, job: Job) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import soundfile as sf
        fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
        vocals, sr = sf.read(job.folder / "vocals.wav", always_2d=True)
        accompaniment, _ = sf.read(job.folder / "accompaniment.wav", always_2d=True)
        for ax, (title, wave) in zip(axes, (("mixture", vocals + accompaniment), ("vocals", vocals))):
            mag = np.abs(audio.stft(audio.prepare_waveform(wave, sr)))
            seconds = mag.shape[1] * audio.HOP / audio.SAMPLE_RATE
            ax.imshow(20 * np.log10(mag + 1e-4), origin="lower", aspect="auto", cmap="magma", vmin=-60,
                      extent=(0, seconds, 0, audio.SAMPLE_RATE / 2 / 1000))
            ax.set_title(title)
            ax.set_ylabel("kHz")
        axes[-1].set_xlabel("seconds")
        fig.tight_layout()
        fig.savefig(job.folder / "spectrogram.png", dpi=70)
        plt.close(fig)

    def clean_expired(self) -> None:
        now = time.time()
        with self.lock:
            expired = [j for j in self.jobs.values() if now - j.created > self.keep_seconds and j.status in ("done", "error")]
        for job in expired:
            self.drop(job)

    def close(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.work_dir, ignore_errors=True)


class UploadReceiver:
    """Streams a multipart body: the 'file' part goes straight into a new job's folder, counted
    against the size limit; other fields are ignored. Nothing is spooled elsewhere.

    Args:
        service: the Service (size limit, job folders).
        boundary: the multipart boundary from the Content-Type header.
    """

    def __init__(self, service: "Service", boundary: bytes):
        from python_multipart import MultipartParser
        from python_multipart.multipart import parse_options_header
        self.service, self.parse_options = service, parse_options_header
        self.job, self.path, self.file = None, None, None
        self.received, self.file_bytes, self.too_large = 0, 0, False
        self._field, self._value, self._headers, self._in_file = b"", b"", {}, False
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._field_data,
            "on_header_value": self._value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end})

    def feed(self, chunk: bytes) -> bool:
        """Parse the next piece of the body; False once the limit is passed (stop reading)."""
        self.received += len(chunk)
        if self.received > self.service.max_bytes + MULTIPART_SLACK:
            self.too_large = True
        if not self.too_large and chunk:
            self.parser.write(chunk)
        return not self.too_large

    def _part_begin(self):
        self._headers, self._in_file = {}, False

    def _field_data(self, data, start, end):
        self._field += data[start:end]

    def _value_data(self, data, start, end):
        self._value += data[start:end]

    def _header_end(self):
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self):
        _, options = self.parse_options(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and b"filename" in options and self.job is None:
            client_name = options[b"filename"].decode("utf-8", "replace")
            self.job = self.service.new_job(client_name)
            suffix = Path(client_name).suffix.lower()
            self.path = self.job.folder / ("upload" + (suffix if suffix in UPLOAD_SUFFIXES else ".bin"))
            self.file, self._in_file = self.path.open("wb"), True

    def _part_data(self, data, start, end):
        if self._in_file and not self.too_large:
            self.file_bytes += end - start
            if self.file_bytes > self.service.max_bytes:
                self.too_large = True
                return
            self.file.write(data[start:end])

    def _part_end(self):
        if self._in_file:
            self.file.close()
            self._in_file = False

    def finish(self):
        """(job, upload path) after the whole body, or (None, None) when no file part came."""
        self.parser.finalize()
        self._part_end()
        if self.job is not None and self.file_bytes == 0:
            self.discard()
        return self.job, self.path

    def discard(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()
        if self.job is not None:
            self.service.drop(self.job)
        self.job, self.path = None, None


def create_app(service: Service):
    from python_multipart.multipart import parse_options_header
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.routing import Route

    async def index(request: Request):
        options = "".join(f'<option value="{n}"{" selected" if n == service.default_wiener[service.default_model] else ""}>'
                          f'{"soft masks" if n == 0 else f"Wiener filter, {n} iteration" + "s" * (n > 1)}</option>'
                          for n in range(MAX_WIENER_ITERATIONS + 1))
        # each model brings its own default post-filter; the page selects it when the model changes
        models = "".join(f'<option value="{html.escape(name)}" data-wiener="{service.default_wiener[name]}">'
                         f'{html.escape(label)}</option>' for name, label in service.model_labels.items())
        return HTMLResponse(PAGE.replace("{wiener_options}", options).replace("{model_options}", models)
                            .replace("{max_mb}", f"{service.max_bytes // 2 ** 20}")
                            .replace("{max_minutes}", f"{service.max_seconds / 60:g}"))

    async def create_job(request: Request):
        # Refuse by the declared length before reading a byte, and stop a longer (or undeclared,
        # chunked) body at the limit: nothing larger than the limit ever reaches the disk.
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > service.max_bytes + MULTIPART_SLACK:
            return too_large()
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            return JSONResponse({"error": "Send the song as a multipart form upload (field 'file')."}, status_code=400)
        model = request.query_params.get("model", service.default_model)
        if model not in service.separators:
            return JSONResponse({"error": f"model must be one of {', '.join(service.separators)}."}, status_code=400)
        wiener = request.query_params.get("wiener", str(service.default_wiener[model]))
        if not (wiener.isdigit() and int(wiener) <= MAX_WIENER_ITERATIONS):
            return JSONResponse({"error": f"wiener must be 0..{MAX_WIENER_ITERATIONS}."}, status_code=400)
        receiver = UploadReceiver(service, boundary)
        try:
            async for chunk in request.stream():
                if not receiver.feed(chunk):
                    break
        except ClientDisconnect:
            receiver.discard()
            return JSONResponse({"error": "The upload was interrupted."}, status_code=400)
        if receiver.too_large:
            receiver.discard()
            return too_large()
        job, path = receiver.finish()
        if job is None:
            return JSONResponse({"error": "No file was uploaded."}, status_code=400)
        message = await asyncio.get_running_loop().run_in_executor(None, service.check_upload, path)
        if message:
            service.drop(job)
            return JSONResponse({"error": message}, status_code=400)
        job.wiener_iterations, job.model = int(wiener), model
        service.worker.submit(service.separate, job, path)
        return JSONResponse({"id": job.id, "name": job.name})

    def too_large():
        return JSONResponse({"error": f"The file is larger than {service.max_bytes // 2 ** 20} MB."}, status_code=413)

    async def job_status(request: Request):
        job = service.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "No such job (it may have expired)."}, status_code=404)
        return JSONResponse({"id": job.id, "name": job.name, "status": job.status, "progress": job.progress,
                             "error": job.error, "warning": job.warning, "model": job.model})

    async def job_file(request: Request):
        job = service.get(request.path_params["job_id"])
        name = request.path_params["name"]
        allowed = {f"{s}.wav" for s in STEMS} | {"spectrogram.png"}
        if job is None or job.status != "done" or name not in allowed:
            return JSONResponse({"error": "Not found."}, status_code=404)
        media = "image/png" if name.endswith(".png") else "audio/wav"
        return FileResponse(job.folder / name, media_type=media)

    async def cleaner():
        while True:
            await asyncio.sleep(60)
            service.clean_expired()

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(cleaner())
        yield
        task.cancel()
        service.close()

    return Starlette(routes=[Route("/", index), Route("/api/jobs", create_job, methods=["POST"]),
                             Route("/api/jobs/{job_id}", job_status),
                             Route("/api/jobs/{job_id}/{name}", job_file)], lifespan=lifespan)


def model_choices(run_args: list[Path] | None) -> dict[str, Path]:
    """The models the page offers, by the name it shows: the given run folders (by folder name, made
    unique), else the shipped models present, else the newest complete run."""
    import runs
    if not run_args:
        shipped = runs.shipped_models()
        newest = runs.default_run()
        return shipped or ({newest.name: newest} if newest else {})
    choices: dict[str, Path] = {}
    for run_dir in run_args:
        name, k = run_dir.name, 2
        while name in choices:
            name, k = f"{run_dir.name} ({k})", k + 1
        choices[name] = run_dir
    return choices


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Serve the vocal separator web page on 127.0.0.1.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", type=Path, nargs="+", default=None,
                   help="run directories the page offers, the first as its default (default: the shipped models, "
                        "fast and quality, else the newest run)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1")
    p.add_argument("--max-mb", type=float, default=MAX_MB, help="upload size limit")
    p.add_argument("--max-minutes", type=float, default=MAX_MINUTES, help="song length limit")
    p.add_argument("--keep-minutes", type=float, default=KEEP_MINUTES, help="delete results after this long")
    p.add_argument("--wiener-iterations", type=int, choices=range(MAX_WIENER_ITERATIONS + 1),
                   default=None, help="the page's default post-filter: 0 = soft masks, N = Wiener filter with N EM "
                                      f"iterations; default {DEFAULT_WIENER_ITERATIONS} for two-source models, 0 "
                                      "for vocals-only ones")
    args = p.parse_args(argv)
    import uvicorn

    import hardware
    import runs
    hardware.configure_tensorflow()
    run_dirs = model_choices(args.run)
    if not run_dirs:
        raise SystemExit("app: no trained model found; train one: python data_prep.py && python train.py "
                         "--base-filters 16 --epochs 5")
    import scratch
    work_dir = scratch.scratch_dir()          # also sweeps job folders left by a killed server
    try:
        service = Service(run_dirs, work_dir, args.max_mb, args.max_minutes, args.keep_minutes, args.wiener_iterations)
    except runs.RunError as exc:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise SystemExit(f"app: {exc}")
    print(f"app: models {', '.join(service.model_labels.values())}; open http://127.0.0.1:{args.port}/ (work files in {work_dir})",
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(create_app(service), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
