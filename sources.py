"""Per-source waveforms of the training songs, for online remixing (remix.py).

`data_prep.py --sources` writes OUT/sources.h5 from the training split (never validation or
test songs):
    vocals, drums, bass, other, accompaniment   float32 1-D, 11025 Hz mono, songs one after another;
                                                a song stores the stems it has (MUSDB18: vocals,
                                                drums, bass, other; MIR-1K and folders: vocals,
                                                accompaniment)
    songs/{name,source,length}                  one row per song
    songs/start_<stem>                          where the song's stem starts (-1: it has none)
    attrs: params (JSON), complete
Written as sources.h5.partial (streamed in chunks of 16384 samples, then copied to contiguous
datasets) and renamed when complete. Readers map the stems into memory read-only and copy one
excerpt at a time, so memory stays flat whatever the amount of audio.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

import audio
from cache import PartialFile, write_table

STEMS = ("vocals", "drums", "bass", "other", "accompaniment")
MUSDB_STEMS = ("drums", "bass", "other")
CHUNK = 16384
FILE_NAME = "sources.h5"


class SourceError(ValueError):
    """A sources file that is missing, unfinished or damaged; the message says what to run."""


class SourceWriter(PartialFile):
    """Streams songs' stems into PATH.partial; close() renames it.

    Args:
        path: the final file.
        params: what made it (JSON in attrs).
    """

    def __init__(self, path: Path, params: dict):
        super().__init__(path)
        self.file.attrs["params"] = json.dumps(params, sort_keys=True)
        for stem in STEMS:
            self.file.create_dataset(stem, shape=(0,), maxshape=(None,), dtype="float32", chunks=(CHUNK,))
        self.rows: dict[str, list] = {k: [] for k in ("name", "source", "length", *(f"start_{s}" for s in STEMS))}

    def add(self, stems: dict[str, np.ndarray], name: str, source: str) -> None:
        """Append one song's stems (11025 Hz mono, equal lengths)."""
        length = min(len(w) for w in stems.values())
        self.rows["name"].append(name)
        self.rows["source"].append(source)
        self.rows["length"].append(length)
        for stem in STEMS:
            start = -1
            if stem in stems:
                ds = self.file[stem]
                start = len(ds)
                ds.resize(start + length, axis=0)
                ds[start:] = stems[stem][:length]
            self.rows[f"start_{stem}"].append(start)

    def close(self) -> Path:
        """Copy the stems into contiguous datasets (which readers map into memory: 100x faster
        excerpts than chunked reads) in bounded blocks, write the songs table, and rename."""
        import h5py
        contiguous = self.partial.with_name(self.partial.name + ".contiguous")
        with h5py.File(contiguous, "w") as out:
            for stem in STEMS:
                src = self.file[stem]
                dst = out.create_dataset(stem, shape=src.shape, dtype="float32")
                for start in range(0, len(src), 1 << 22):
                    dst[start:start + (1 << 22)] = src[start:start + (1 << 22)]
            for key, value in self.file.attrs.items():
                out.attrs[key] = value
            write_table(out.create_group("songs"), self.rows)
        self.file.close()
        os.replace(contiguous, self.partial)
        self.file = h5py.File(self.partial, "a")
        return self.finish()


class SourceStore:
    """Random access to the stems of a sources.h5.

    Args:
        path: the file, or the folder holding sources.h5.
    """

    def __init__(self, path: str | Path):
        import h5py
        path = Path(path)
        self.path = path / FILE_NAME if path.is_dir() else path
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file; make it with python data_prep.py --sources "
                              f"(same sources as the training caches)")
        try:
            f = h5py.File(self.path, "r")
        except OSError:
            raise SourceError(f"{self.path}: not a readable sources file; rebuild it with "
                              "python data_prep.py --sources --force") from None
        with f:
            if not f.attrs.get("complete", False):
                raise SourceError(f"{self.path}: incomplete (interrupted data_prep?); rerun data_prep.py --sources")
            self.params = json.loads(f.attrs["params"])
            if self.params.get("sample_rate") != audio.SAMPLE_RATE:
                raise SourceError(f"{self.path}: made at {self.params.get('sample_rate')} Hz, not "
                                  f"{audio.SAMPLE_RATE}; rebuild it with data_prep.py --sources --force")
            self.names = f["songs/name"][:].astype(str)
            self.source = f["songs/source"][:].astype(str)
            self.length = f["songs/length"][:]
            self.start = {stem: f[f"songs/start_{stem}"][:] for stem in STEMS}
        self._file, self._stems = None, {}

    def __len__(self) -> int:
        return len(self.names)

    def songs_with(self, stem: str) -> np.ndarray:
        """Indices of the songs that have `stem`."""
        return np.flatnonzero(self.start[stem] >= 0)

    def _stem(self, stem: str):
        """The stem's samples: a read-only memory map of the contiguous dataset (the OS pages it in and
        out, so memory stays flat), or the h5py dataset where the file has it chunked."""
        if stem not in self._stems:     # opened lazily: the store can be pickled to workers
            import h5py
            if self._file is None:
                self._file = h5py.File(self.path, "r")
            ds = self._file[stem]
            offset = ds.id.get_offset()
            self._stems[stem] = ds if offset is None or ds.chunks else \
                np.memmap(self.path, np.float32, "r", offset=offset, shape=ds.shape)
        return self._stems[stem]

    def read(self, stem: str, song: int, offset: int, n: int) -> np.ndarray:
        """n samples of a song's stem from `offset`, zero-padded past its end: float32 (n,)."""
        out = np.zeros(n, np.float32)
        start = int(self.start[stem][song])
        take = max(0, min(n, int(self.length[song]) - offset))
        if start >= 0 and take:
            out[:take] = self._stem(stem)[start + offset:start + offset + take]
        return out

    def seconds(self) -> float:
        return float(self.length.sum()) / audio.SAMPLE_RATE

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"], state["_stems"] = None, {}
        return state


def is_current(path: Path, params: dict) -> bool:
    """True if `path` is a complete sources file made with exactly `params`."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False)) and json.loads(f.attrs["params"]) == \
                json.loads(json.dumps(params, sort_keys=True))
    except (OSError, KeyError, ValueError):
        return False
