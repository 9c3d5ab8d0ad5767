"""Read-only access to one or several HDF5 caches written by data_prep.py, as one window store.

Several files (shards, or MUSDB18 + MIR-1K) act as one: window and song ids are global.
Only the small per-window tables are held in RAM; windows are read one at a time, which
is far faster with h5py than fancy indexing.
"""
from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np

import audio


def resolve_caches(specs: list[str | Path], split: str) -> list[Path]:
    """Files for `split` from a mix of cache files, folders and globs.

    A folder contributes SPLIT.h5 and its shards SPLIT-KofN.h5.
    """
    paths = []
    for spec in specs:
        spec = Path(spec)
        if spec.is_dir():
            found = sorted(spec.glob(f"{split}.h5")) + sorted(spec.glob(f"{split}-*of*.h5"))
        elif any(ch in str(spec) for ch in "*?["):
            found = [Path(p) for p in sorted(glob.glob(str(spec)))]
        else:
            found = [spec] if spec.exists() else []
        if not found:
            raise FileNotFoundError(f"no {split} cache at {spec}: run `python data_prep.py --out {spec}` first")
        paths += found
    return paths


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
            with h5py.File(path, "r") as f:
                if not f.attrs.get("complete", False):
                    raise ValueError(f"{path}: incomplete cache (interrupted data_prep?); rerun data_prep.py")
                params = json.loads(f.attrs["params"])
                mismatch = {k: v for k, v in audio.stft_params().items() if params.get(k) != v}
                if mismatch:
                    raise ValueError(f"{path}: built with other STFT parameters {sorted(mismatch)}; "
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
