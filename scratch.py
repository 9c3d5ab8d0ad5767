"""Temporary files in one folder the program owns, removed on exit and swept after a crash.

Every temporary file of separate.py and the web page (ffmpeg decodes, uploads, job results)
lives under one folder per process, TMPDIR/vocal-separator-<pid>-<random>. It is removed at
exit, on SIGINT and on SIGTERM (`handle_termination` turns SIGTERM into the same clean-up path as
Ctrl-C), and a later start removes the folders of processes that no longer exist (kill -9,
power loss).
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

PREFIX = "vocal-separator-"
_scratch: Path | None = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # someone else's live process
        return True
    return True


def sweep_stale(root: str | Path | None = None) -> list[Path]:
    """Remove scratch folders left by processes that are gone; returns what was removed."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(PREFIX + "*"):
        pid_text = folder.name[len(PREFIX):].split("-")[0]
        if folder.is_dir() and pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def scratch_dir() -> Path:
    """This process's scratch folder (made on first use, after sweeping stale ones)."""
    global _scratch
    if _scratch is None or not _scratch.exists():
        sweep_stale()
        _scratch = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def remove_scratch() -> None:
    """Remove this process's scratch folder now (it is made again if needed)."""
    global _scratch
    if _scratch is not None:
        shutil.rmtree(_scratch, ignore_errors=True)
        _scratch = None


_terminated = False                 # SIGTERM arrived (handle_termination's handler ran)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so the same `finally` blocks clean up."""


def _in_ignoring_code(frame) -> bool:
    """True when `frame` (where a signal landed) runs inside code whose exceptions Python prints as
    "Exception ignored ... Traceback" and drops: a garbage-collector callback (JAX registers one) or
    a __del__."""
    import gc
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def handle_termination() -> None:
    """Make SIGTERM raise `Terminated` in the main thread (call from a command's main). Where the raise
    would be printed and lost (a garbage-collector callback), only the flag is set, and
    raise_if_terminated stops the work at its next step: the user sees one line, not a traceback."""
    def _raise(signum, frame):
        global _terminated
        _terminated = True
        if not _in_ignoring_code(frame):
            raise Terminated()
    signal.signal(signal.SIGTERM, _raise)


def raise_if_terminated() -> None:
    """Raise `Terminated` if SIGTERM has arrived. The handler's own raise is lost when the signal lands
    in code that ignores exceptions (a garbage-collector callback, a __del__: Python prints "Exception
    ignored" and goes on), so long work calls this between its steps."""
    if _terminated:
        raise Terminated()
