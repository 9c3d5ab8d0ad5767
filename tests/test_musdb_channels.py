"""bench/musdb_channels.py: a MUSDB18 stem file's channels become two mono songs data_prep.py reads."""
import subprocess
import sys
import importlib.util

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SHARED_DATA

spec = importlib.util.spec_from_file_location("musdb_channels", ROOT / "bench" / "musdb_channels.py")
musdb_channels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(musdb_channels)

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "musdb18-7").is_dir(), reason="needs ../shared/data/musdb18-7")


def test_each_channel_becomes_a_mono_song_of_its_stems(tmp_path):
    import audio
    import data_prep
    song = sorted((SHARED_DATA / "musdb18-7" / "train").glob("*.stem.mp4"))[0]
    musdb_channels.write_channels(str(song), "s", tmp_path / "coll")
    mixture, sr = audio.read_audio(song)                 # the file's first stream: its mixture
    for channel, side in enumerate(musdb_channels.SIDES):
        folder = tmp_path / "coll" / "train" / f"s-{side}"
        assert sorted(p.stem for p in folder.iterdir()) == sorted(musdb_channels.STEMS.values())
        mono, mono_sr = sf.read(folder / "mixture.flac")
        assert mono.ndim == 1 and mono_sr == sr == 44100
        n = min(len(mono), len(mixture))
        np.testing.assert_allclose(mono[:n], mixture[:n, channel], atol=1e-4)   # 24-bit FLAC
    data_prep.main(["--folder-root", str(tmp_path / "coll"), "--splits", "train", "--valid-fraction", "0",
                    "--out", str(tmp_path / "cache"), "--jobs", "1"])
    from cache import WindowStore
    store = WindowStore([tmp_path / "cache" / "train.h5"])
    assert store.n_songs == 2 and set(np.asarray(store.songs["source"]).tolist()) == {"folder"}


def test_the_command_needs_a_cache_of_stem_files(tiny_cache, tmp_path):
    script = str(ROOT / "bench" / "musdb_channels.py")
    for data, message in ((tmp_path / "none", "no train cache"), (tiny_cache, "needs MUSDB18 stem files")):
        out = subprocess.run([sys.executable, script, "--train-data", str(data), "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode != 0 and message in out.stderr.strip().splitlines()[-1], out.stderr
    assert not (tmp_path / "o").exists()
