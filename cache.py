"""The HDF5 cache format: its writer, its reader, and the check that a cache is current.

A cache file `{train,valid,test}.h5` holds
    mix_mag, mix_phase, vocal_mag               float32 (n, 512, 128, 1), one chunk per window
    song_id, window_index, valid_frames         int32 (n,)
    vocal_abs_sum                               float32 (n,) sum |vocal waveform| per window
    mix_wave, vocal_wave, accomp_wave           float32 1-D, all songs' 11025 Hz mono audio
                                                (the references evaluation scores against; the
                                                accompaniment magnitude for oracles is one STFT
                                                of accomp_wave away, so it is not stored)
    songs/{name,source,path,length,first_window,n_windows,wave_start,orig_sample_rate,orig_channels}
    attrs: params (JSON: every parameter), versions (JSON), fingerprint, complete
Files are written as NAME.h5.partial and renamed when complete.

Reading: several files (shards, or MUSDB18 + MIR-1K) act as one window store whose window and
song ids are global. Only the small per-window tables are held in RAM; windows are read one at
a time, which is far faster with h5py than fancy indexing.
"""
from __future__ import annotations

import collections
import glob
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

import audio

CACHE_FORMAT = 1
WINDOW_ARRAYS = ("mix_mag", "mix_phase", "vocal_mag")
WAVE_ARRAYS = ("mix_wave", "vocal_wave", "accomp_wave")
# Measured on the musdb18-7 cache (bench/prep.py --compression): lzf saves ~23% of space
# (gzip ~30%) but halves (gzip: /12) the speed of reading single windows, which the training
# pipeline does at >1,000 windows/s; float16 would break the < 1e-4 reconstruction of the
# mixture. So: float32, uncompressed, one chunk per window.
COMPRESSION = None


# ---------------------------------------------------------------- writing
class PartialFile:
    """An HDF5 file written as NAME.partial, marked complete and renamed by finish(); abort() leaves
    the partial file, which can never pass for complete."""

    def __init__(self, path: Path):
        import h5py
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.file = h5py.File(self.partial, "w")
        self.file.attrs["complete"] = False

    def finish(self) -> Path:
        self.file.attrs["complete"] = True
        self.file.close()
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        if self.file.id.valid:
            self.file.close()


class CacheWriter(PartialFile):
    """Streams songs into NAME.h5.partial with resizable chunked datasets; renames on close.

    Args:
        path: the final cache file.
        params: every parameter that made it (stored as JSON; compared by cache_is_current).
    """

    def __init__(self, path: Path, params: dict):
        super().__init__(path)
        self.file.attrs["params"] = json.dumps(params, sort_keys=True)
        self.file.attrs["versions"] = json.dumps(package_versions(), sort_keys=True)
        for name in WINDOW_ARRAYS:
            self.file.create_dataset(name, shape=(0, *audio.WINDOW_SHAPE), maxshape=(None, *audio.WINDOW_SHAPE),
                                     dtype="float32", chunks=(1, *audio.WINDOW_SHAPE), compression=COMPRESSION)
        for name, dtype in (("song_id", "int32"), ("window_index", "int32"), ("valid_frames", "int32"),
                            ("vocal_abs_sum", "float32")):
            self.file.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(4096,))
        for name in WAVE_ARRAYS:
            self.file.create_dataset(name, shape=(0,), maxshape=(None,), dtype="float32",
                                     chunks=(audio.SAMPLE_RATE * 10,))
        self.songs = collections.defaultdict(list)
        self.n_windows = 0
        self.n_samples = 0

    def _append(self, name: str, values: np.ndarray, start: int) -> None:
        ds = self.file[name]
        ds.resize(start + len(values), axis=0)
        ds[start:] = values

    def add(self, arrays: dict[str, np.ndarray], name: str, source: str, path: str,
            orig_sample_rate: int, orig_channels: int) -> None:
        """Append one song.

        Args:
            arrays: WINDOW_ARRAYS (n, N_BINS, WINDOW_FRAMES), WAVE_ARRAYS (samples,),
                valid_frames and vocal_abs_sum (n,).
            name, source, path: the song's row in the songs table.
            orig_sample_rate, orig_channels: of the file it was decoded from.
        """
        n = len(arrays["valid_frames"])
        length = len(arrays["mix_wave"])
        song_id = len(self.songs["name"])
        for key in WINDOW_ARRAYS:
            self._append(key, arrays[key][..., None], self.n_windows)
        self._append("song_id", np.full(n, song_id, np.int32), self.n_windows)
        self._append("window_index", np.arange(n, dtype=np.int32), self.n_windows)
        self._append("valid_frames", arrays["valid_frames"], self.n_windows)
        self._append("vocal_abs_sum", arrays["vocal_abs_sum"], self.n_windows)
        for key in WAVE_ARRAYS:
            self._append(key, arrays[key], self.n_samples)
        row = {"name": name, "source": source, "path": path, "length": length, "first_window": self.n_windows,
               "n_windows": n, "wave_start": self.n_samples, "orig_sample_rate": orig_sample_rate,
               "orig_channels": orig_channels}
        for key, value in row.items():
            self.songs[key].append(value)
        self.n_windows += n
        self.n_samples += length

    def close(self) -> Path:
        """Write the songs table and fingerprint, mark complete and rename to the final name."""
        write_table(self.file.create_group("songs"), self.songs)
        digest = hashlib.sha1(self.file.attrs["params"].encode())
        digest.update(json.dumps(self.songs["name"]).encode())
        digest.update(np.array(self.songs["length"], dtype=np.int64).tobytes())
        self.file.attrs["fingerprint"] = digest.hexdigest()[:16]
        return self.finish()


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "librosa", "soxr", "soundfile", "stempeg", "musdb", "h5py", "tensorflow",
                "tensorflow-cpu", "keras"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def cache_is_current(path: Path, params: dict) -> bool:
    """True when `path` is a complete cache built with exactly these parameters."""
    if not path.exists():
        return False
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False)) and \
                json.loads(f.attrs["params"]) == json.loads(json.dumps(params, sort_keys=True))
    except (OSError, KeyError, ValueError):
        return False


# ---------------------------------------------------------------- reading


def resolve_caches(specs: list[str | Path], split: str) -> list[Path]:
    """Files for `split` from a mix of cache files, folders and globs.

    A folder contributes SPLIT.h5 and its shards SPLIT-KofN.h5. Among several specs, a folder that
    holds caches of other splits only (extra training songs, say) contributes nothing to this one;
    the split must come from at least one spec.
    """
    paths, other_splits = [], []
    for spec in specs:
        spec = Path(spec)
        if spec.is_dir():
            found = sorted(spec.glob(f"{split}.h5")) + sorted(spec.glob(f"{split}-*of*.h5"))
        elif any(ch in str(spec) for ch in "*?["):
            found = [Path(p) for p in sorted(glob.glob(str(spec)))]
        else:
            found = [spec] if spec.exists() else []
        if not found:
            partial = sorted(spec.glob(f"{split}*.h5.partial")) if spec.is_dir() else \
                [p for p in [Path(str(spec) + ".partial")] if p.exists()]
            if partial:
                raise CacheError(f"{spec}: only an unfinished {partial[0].name} (data_prep.py was interrupted); "
                                 f"rerun `python data_prep.py --out {spec if spec.is_dir() else spec.parent}`")
            if len(specs) > 1 and spec.is_dir() and any(spec.glob("*.h5")):
                other_splits.append(spec)
                continue
            raise CacheError(f"no {split} cache at {spec}: run `python data_prep.py --out {spec}` first")
        paths += found
    if not paths:
        raise CacheError(f"no {split} cache in {', '.join(map(str, other_splits))}: give a folder that has "
                         f"one too (data_prep.py --splits ... {split})")
    return paths


def write_table(group, columns: dict[str, list]) -> None:
    """Columns of a songs table into an HDF5 group: strings as UTF-8, everything else int64."""
    import h5py
    for key, values in columns.items():
        if values and isinstance(values[0], str):
            group.create_dataset(key, data=np.array(values, dtype=object), dtype=h5py.string_dtype("utf-8"))
        else:
            group.create_dataset(key, data=np.array(values, dtype=np.int64))


class CacheError(ValueError):
    """A cache that is missing, unfinished or damaged; the message names it and what to run."""


class WindowStore:
    """Windows of one or more caches behind global indices.

    Args:
        paths: cache files (all made with the same STFT parameters).
    """

    TABLES = ("song_id", "window_index", "valid_frames", "vocal_abs_sum")

    def __init__(self, paths: list[str | Path]):
        import h5py
        self.paths = [Path(p) for p in paths]
        self._files = None
        self._datasets = {}
        tables = {k: [] for k in self.TABLES}
        self.songs: dict[str, list] = {}
        self.params, self.fingerprints, self.offsets = [], [], []
        self.song_file: list[int] = []      # which file each song lives in
        n_windows = n_songs = 0
        for path in self.paths:
            try:
                f = h5py.File(path, "r")
            except OSError as exc:
                raise CacheError(f"{path}: not a readable cache ({str(exc).split(' (')[0]}); it is damaged or "
                                 "truncated: rebuild it with python data_prep.py --force") from None
            with f:
                if not f.attrs.get("complete", False):
                    raise CacheError(f"{path}: incomplete cache (interrupted data_prep?); rerun data_prep.py")
                params = json.loads(f.attrs["params"])
                mismatch = {k: v for k, v in audio.stft_params().items() if params.get(k) != v}
                if mismatch:
                    raise CacheError(f"{path}: built with other STFT parameters {sorted(mismatch)}; "
                                     "rebuild it with data_prep.py --force")
                self.params.append(params)
                self.fingerprints.append(str(f.attrs["fingerprint"]))
                for k in self.TABLES:
                    tables[k].append(f[k][:])
                tables["song_id"][-1] = tables["song_id"][-1] + n_songs
                for key in f["songs"]:
                    values = f["songs"][key][:]
                    if values.dtype.kind == "O":
                        values = values.astype(str)
                    elif key == "first_window":
                        values = values + n_windows
                    self.songs.setdefault(key, []).extend(values.tolist())
                self.offsets.append(n_windows)
                self.song_file += [len(self.offsets) - 1] * len(f["songs/name"])
                n_windows += len(f["valid_frames"])
                n_songs += len(f["songs/name"])
        self.offsets.append(n_windows)
        for k in self.TABLES:
            setattr(self, k, np.concatenate(tables[k]))

    def __len__(self) -> int:
        return len(self.valid_frames)

    @property
    def n_songs(self) -> int:
        return len(self.songs["name"])

    def _open(self) -> list:
        import h5py
        if self._files is None:       # opened lazily so the store can be pickled to workers
            self._files = [h5py.File(p, "r") for p in self.paths]
        return self._files

    def _dataset(self, name: str, index: int):
        """(h5py dataset, local index); handles are cached: looking one up costs 10x a window read."""
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        if (k, name) not in self._datasets:
            self._datasets[(k, name)] = self._open()[k][name]
        return self._datasets[(k, name)], int(index) - self.offsets[k]

    def read(self, name: str, index: int) -> np.ndarray:
        """One window (N_BINS, WINDOW_FRAMES, 1) of array `name` at global index."""
        dataset, local = self._dataset(name, index)
        return dataset[local]

    def read_song(self, name: str, song: int) -> np.ndarray:
        """All windows of a song as one contiguous read: (n, N_BINS, WINDOW_FRAMES, 1)."""
        dataset, local = self._dataset(name, self.songs["first_window"][song])
        return dataset[local:local + self.songs["n_windows"][song]]

    def read_wave(self, name: str, song: int) -> np.ndarray:
        """A song's 11025 Hz mono waveform: name in mix_wave, vocal_wave, accomp_wave."""
        f = self._open()[self.song_file[song]]
        start = self.songs["wave_start"][song]
        return f[name][start:start + self.songs["length"][song]]

    def read_wave_range(self, name: str, song: int, start: int, n: int) -> np.ndarray:
        """Samples [start, start + n) of a song's waveform, zero-padded outside the song: float32 (n,)."""
        out = np.zeros(n, np.float32)
        length = self.songs["length"][song]
        lo, hi = max(start, 0), min(start + n, length)
        if hi > lo:
            f = self._open()[self.song_file[song]]
            base = self.songs["wave_start"][song]
            out[lo - start:hi - start] = f[name][base + lo:base + hi]
        return out

    def fingerprint(self) -> str:
        return "+".join(self.fingerprints)

    def close(self) -> None:
        if self._files:
            for f in self._files:
                f.close()
        self._files = None
        self._datasets = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"], state["_datasets"] = None, {}
        return state
