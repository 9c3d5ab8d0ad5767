"""MUSDB18 training songs' left and right channels as separate mono songs: a --folder-root collection.

    python bench/musdb_channels.py --train-data data/musdb18-7 --out /tmp/musdb-chan
    python data_prep.py --folder-root /tmp/musdb-chan --splits train --valid-fraction 0 --out data/musdb-chan
    python train.py ... --data data/r2 data/musdb-chan --source-weight musdb=4 --source-weight folder=2

The training data of README's `final-v11-channels` row (session 9): the model also learns from one
channel at a time, as `separate.py --channels each` feeds it. Each training song of a MUSDB18
training cache made by data_prep.py (its songs' original stem files; musdb's official validation
songs are in the cache's valid split, so left out) becomes SONG-L and SONG-R, each a folder of mono
44.1 kHz FLAC stems (mixture = the stem file's own mixture stream, vocals, drums, bass, other; the
last three are summed into the accompaniment by data_prep.py).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEMS = {0: "mixture", 1: "drums", 2: "bass", 3: "other", 4: "vocals"}      # MUSDB18 stream order
SIDES = ("L", "R")


def write_channels(song_path: str, name: str, out: Path) -> None:
    """One stem file -> out/train/NAME-L/ and NAME-R/, each with a mono FLAC per stem."""
    import numpy as np
    import soundfile as sf
    folders = [out / "train" / f"{name}-{side}" for side in SIDES]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for index, stem in STEMS.items():
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", song_path, "-map", f"0:a:{index}", "-f", "f32le",
                              "-ac", "2", "-ar", "44100", "-"], capture_output=True, check=True).stdout
        wave = np.frombuffer(raw, np.float32).reshape(-1, 2)
        for channel, folder in enumerate(folders):
            sf.write(str(folder / f"{stem}.flac"), wave[:, channel], 44100, subtype="PCM_24")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-data", required=True,
                   help="a training cache data_prep.py made from MUSDB18 stem files (folder or train.h5)")
    p.add_argument("--out", type=Path, required=True, help="the collection's folder (OUT/train/<song>-L|R/)")
    args = p.parse_args()
    import audio
    from cache import CacheError, WindowStore, resolve_caches
    from tqdm import tqdm
    audio.require_ffmpeg()
    try:
        store = WindowStore(resolve_caches([args.train_data], "train"))
    except CacheError as exc:
        raise SystemExit(f"musdb_channels: {exc}")
    songs = [(str(path), str(name)) for path, name, source in
             zip(store.songs["path"], store.songs["name"], store.songs["source"]) if source == "musdb"]
    missing = [path for path, _ in songs if not path.endswith(".stem.mp4") or not Path(path).exists()]
    if not songs or missing:
        raise SystemExit(f"musdb_channels: {args.train_data}: needs MUSDB18 stem files where data_prep.py read "
                         f"them ({missing[0] if missing else 'no MUSDB18 songs in the cache'})")
    for path, name in tqdm(songs, desc="channels", unit="song"):
        write_channels(path, name, args.out)
    print(f"musdb_channels: {len(songs)} training songs -> {2 * len(songs)} one-channel songs in {args.out}/train")


if __name__ == "__main__":
    main()
