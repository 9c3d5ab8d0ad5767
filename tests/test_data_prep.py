import json

import h5py
import numpy as np
import pytest
import soundfile as sf

import audio
import cache
import data_prep
from cache import WindowStore
from conftest import SHARED_DATA, needs_shared_data, write_tiny_musdb


def _names(path):
    with h5py.File(path, "r") as f:
        return [x.decode() for x in f["songs/name"][:]]


def test_cache_layout(tiny_cache):
    with h5py.File(tiny_cache / "train.h5", "r") as f:
        n = f["mix_mag"].shape[0]
        for name in cache.WINDOW_ARRAYS:
            assert f[name].shape == (n, 512, 128, 1) and f[name].dtype == np.float32
        for name in ("song_id", "window_index", "valid_frames", "vocal_abs_sum"):
            assert f[name].shape == (n,)
        params = json.loads(f.attrs["params"])
        assert params["sample_rate"] == 11025 and params["n_fft"] == 1024 and params["hop"] == 256
        assert "numpy" in json.loads(f.attrs["versions"]) and f.attrs["complete"]
        assert f["songs/length"][0] == len(f["vocal_wave"][:f["songs/length"][0]])


def test_song_level_split_has_no_overlap(tiny_cache):
    names = {split: set(_names(tiny_cache / f"{split}.h5")) for split in data_prep.SPLITS}
    assert names["train"] and names["valid"] and names["test"]
    assert not (names["train"] & names["valid"]) and not (names["train"] & names["test"])
    assert not (names["valid"] & names["test"])


def test_mir1k_split_keeps_recordings_together(tmp_path):
    for singer, song, clip in [("abjones", 1, 1), ("abjones", 1, 2), ("abjones", 2, 1), ("amy", 3, 1),
                               ("amy", 3, 2), ("amy", 4, 1), ("Ani", 1, 1)]:
        sf.write(tmp_path / f"{singer}_{song}_{clip:02d}.wav", np.zeros((100, 2)), 16000)
    songs = data_prep.mir1k_songs(tmp_path, valid_fraction=0.3)
    by_recording = {}
    for s in songs:
        by_recording.setdefault("_".join(s.name.split("_")[:2]), set()).add(s.split)
    assert all(len(splits) == 1 for splits in by_recording.values())
    assert {s.split for s in songs if s.name.startswith("Ani")} == {"test"}
    assert {s.split for s in songs if not s.name.startswith("Ani")} == {"train", "valid"}


def test_rerun_skips_and_force_rebuilds(tiny_musdb, tmp_path, capsys):
    args = ["--musdb-root", str(tiny_musdb), "--out", str(tmp_path), "--jobs", "1", "--splits", "test"]
    data_prep.main(args)
    mtime = (tmp_path / "test.h5").stat().st_mtime_ns
    data_prep.main(args)
    assert "up to date" in capsys.readouterr().err
    assert (tmp_path / "test.h5").stat().st_mtime_ns == mtime
    data_prep.main(args + ["--force"])
    assert (tmp_path / "test.h5").stat().st_mtime_ns != mtime


def test_interrupted_write_leaves_no_complete_looking_file(tiny_musdb, tmp_path, monkeypatch):
    real = data_prep.prepare_song
    calls = []

    def interrupted(song):
        calls.append(song)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(song)

    monkeypatch.setattr(data_prep, "prepare_song", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data_prep.main(["--musdb-root", str(tiny_musdb), "--out", str(tmp_path), "--jobs", "1",
                        "--splits", "train"])
    assert not (tmp_path / "train.h5").exists()
    partial = tmp_path / "train.h5.partial"
    assert partial.exists()
    with h5py.File(partial, "r") as f:
        assert not f.attrs["complete"]
    with pytest.raises(ValueError, match="incomplete"):
        WindowStore([partial])


def test_a_training_only_folder_joins_the_others(tiny_cache, tmp_path):
    """Extra training songs (e.g. data_prep.py --remix N --splits train) beside a full cache folder:
    train.py --data FULL EXTRA trains on both and validates on FULL's songs."""
    extra, extra2 = tmp_path / "extra", tmp_path / "extra2"
    for folder in (extra, extra2):
        folder.mkdir()
        (folder / "train.h5").symlink_to(tiny_cache / "train.h5")
    assert cache.resolve_caches([tiny_cache, extra], "valid") == [tiny_cache / "valid.h5"]
    assert cache.resolve_caches([tiny_cache, extra], "train") == [tiny_cache / "train.h5", extra / "train.h5"]
    with pytest.raises(cache.CacheError, match=f"no valid cache at {extra}"):
        cache.resolve_caches([extra], "valid")                   # alone it must have the split
    with pytest.raises(cache.CacheError, match="no valid cache in"):
        cache.resolve_caches([extra, extra2], "valid")
    with pytest.raises(cache.CacheError, match="no valid cache at"):
        cache.resolve_caches([tiny_cache, tmp_path / "typo"], "valid")   # a wrong path is never skipped


def test_shards_partition_the_songs(tiny_musdb, tmp_path):
    for k in (1, 2):
        data_prep.main(["--musdb-root", str(tiny_musdb), "--out", str(tmp_path), "--jobs", "1",
                        "--splits", "train", "--shard", f"{k}/2"])
    a, b = _names(tmp_path / "train-1of2.h5"), _names(tmp_path / "train-2of2.h5")
    assert a and b and not set(a) & set(b)
    from cache import resolve_caches
    store = WindowStore(resolve_caches([tmp_path], "train"))
    assert store.n_songs == len(a) + len(b)
    assert sorted(store.songs["name"]) == sorted(a + b)
    last = store.n_songs - 1
    assert len(store.read_wave("vocal_wave", last)) == store.songs["length"][last]


def test_remix_songs(tiny_musdb, tmp_path):
    data_prep.main(["--musdb-root", str(tiny_musdb), "--out", str(tmp_path), "--jobs", "2",
                    "--splits", "train", "--remix", "3", "--seed", "7"])
    names = _names(tmp_path / "train.h5")
    remixes = [n for n in names if n.startswith("remix-")]
    assert len(remixes) == 3 and "vocals:" in remixes[0] and "drums:" in remixes[0]
    store = WindowStore([tmp_path / "train.h5"])
    song = names.index(remixes[0])
    mix, vocal, acc = (store.read_wave(k, song) for k in ("mix_wave", "vocal_wave", "accomp_wave"))
    np.testing.assert_allclose(mix, vocal + acc, atol=1e-6)
    # deterministic in the seed
    again = data_prep.remix_songs([s for s in data_prep.musdb_songs(tiny_musdb, True, 0.1) if s.split == "train"], 3, 7)
    assert [s.name for s in again] == remixes


def test_speed_copies_are_coherent_and_resampled(tiny_musdb, tmp_path):
    data_prep.main(["--musdb-root", str(tiny_musdb), "--out", str(tmp_path), "--jobs", "2",
                    "--splits", "train", "--speed", "0.8", "1.25"])
    store = WindowStore([tmp_path / "train.h5"])
    names = list(store.songs["name"])
    originals = [i for i, s in enumerate(store.songs["source"]) if s == "musdb"]
    assert originals and len(names) == 3 * len(originals)
    for i in originals:
        for factor in (0.8, 1.25):
            copy = names.index(f"{names[i]} (speed {factor:g})")
            assert store.songs["source"][copy] == "speed"
            # length / factor, within soxr's rounding
            assert abs(store.songs["length"][copy] - store.songs["length"][i] / factor) <= 2
            # every stem through the same resampling: the copy's mixture is its stems' sum as
            # nearly as the original's (a stored mixture stream differs from the sum a little)
            mix, vocal, acc = (store.read_wave(k, copy) for k in ("mix_wave", "vocal_wave", "accomp_wave"))
            orig_mix, orig_vocal, orig_acc = (store.read_wave(k, i) for k in ("mix_wave", "vocal_wave", "accomp_wave"))
            assert np.abs(mix - vocal - acc).max() <= 1.5 * np.abs(orig_mix - orig_vocal - orig_acc).max() + 1e-6
            # the same vocal, resampled: as loud as the original's
            assert np.sqrt(np.mean(vocal ** 2)) == pytest.approx(np.sqrt(np.mean(orig_vocal ** 2)), rel=0.05)
    with pytest.raises(SystemExit, match="0.5..2"):
        data_prep.main(["--musdb-root", str(tiny_musdb), "--out", str(tmp_path / "bad"), "--splits", "train",
                        "--speed", "3"])


# ---------------------------------------------------------------- bad inputs
def _one_song(root, name, stems, sr):
    folder = root / "train" / name
    folder.mkdir(parents=True)
    for stem in data_prep.MUSDB_STEM_INDEX:
        sf.write(folder / f"{stem}.wav", stems[stem], sr)
    return data_prep.Song(name, "musdb", "wav", str(folder), "train")


def _stems(seconds, sr, channels, rng, silent=False):
    n = int(seconds * sr)
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)[:, None] * np.ones((1, channels))
    noise = 0.05 * rng.standard_normal((n, channels))
    stems = {"vocals": tone, "drums": noise, "bass": tone * 0.5, "other": noise * 0.5}
    if silent:
        stems = {k: np.zeros_like(v) for k, v in stems.items()}
    stems["mixture"] = sum(stems.values())
    return stems


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("sr", [8000, 48000])
def test_any_channel_count_and_rate(tmp_path, rng, channels, sr):
    song = _one_song(tmp_path, "odd", _stems(3.5, sr, channels, rng), sr)
    prep = data_prep.prepare_song(song)
    assert prep.message == ""
    assert prep.orig_sample_rate == sr and prep.orig_channels == channels
    assert prep.length == int(round(3.5 * audio.SAMPLE_RATE))
    assert prep.arrays["mix_mag"].shape[1:] == (512, 128)


def test_silent_song_is_skipped_with_message(tmp_path, rng):
    song = _one_song(tmp_path, "quiet", _stems(4, 44100, 2, rng, silent=True), 44100)
    prep = data_prep.prepare_song(song)
    assert not prep.arrays and "skipped" in prep.message and "silent" in prep.message and "quiet" in prep.message


def test_short_song_is_padded_with_message(tmp_path, rng):
    song = _one_song(tmp_path, "short", _stems(1.0, 44100, 2, rng), 44100)
    prep = data_prep.prepare_song(song)
    assert prep.arrays and "padded" in prep.message and "short" in prep.message
    assert prep.arrays["valid_frames"].tolist() == [1 + audio.SAMPLE_RATE // audio.HOP]


def test_corrupt_file_is_skipped_and_the_run_goes_on(tmp_path, rng, capsys):
    root = write_tiny_musdb(tmp_path / "db", n_train=3, n_test=1, seconds=3.2)
    bad = root / "train" / "tiny-train-1" / "vocals.wav"
    bad.write_bytes(b"RIFF....garbage" * 50)
    data_prep.main(["--musdb-root", str(root), "--out", str(tmp_path / "out"), "--jobs", "1",
                    "--valid-fraction", "0", "--splits", "train"])
    err = capsys.readouterr().err
    assert "skipped" in err and "vocals.wav" in err and "cannot decode" in err
    assert _names(tmp_path / "out" / "train.h5") == ["tiny-train-0", "tiny-train-2"]


def test_missing_root_gives_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no such directory"):
        data_prep.main(["--musdb-root", str(tmp_path / "nope"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="no such directory"):
        data_prep.main(["--mir1k-root", str(tmp_path / "nope"), "--out", str(tmp_path)])
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(SystemExit, match="no MUSDB18 tracks"):
        data_prep.main(["--musdb-root", str(tmp_path / "empty"), "--out", str(tmp_path)])


def test_mir1k_mono_clip_is_rejected(tmp_path):
    sf.write(tmp_path / "abjones_1_01.wav", np.zeros(16000), 16000)
    prep = data_prep.prepare_song(data_prep.mir1k_songs(tmp_path, 0.0)[0])
    assert "skipped" in prep.message and "stereo" in prep.message


def test_missing_ffmpeg_is_one_line(monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda tool: None)
    with pytest.raises(audio.AudioError, match="ffmpeg and ffprobe not found on PATH: install ffmpeg"):
        audio.require_ffmpeg()


# ---------------------------------------------------------------- real data (skips without ../shared/data)
@pytest.mark.slow
@needs_shared_data("musdb18-7")
def test_real_musdb_stems(tmp_path):
    root = tmp_path / "musdb"
    for subset, count in (("train", 2), ("test", 1)):
        (root / subset).mkdir(parents=True)
        for src in sorted((SHARED_DATA / "musdb18-7" / subset).glob("*.stem.mp4"))[:count]:
            (root / subset / src.name).symlink_to(src)
    data_prep.main(["--musdb-root", str(root), "--out", str(tmp_path / "out"), "--jobs", "2"])
    store = WindowStore([tmp_path / "out" / "test.h5"])
    assert store.songs["orig_sample_rate"][0] == 44100 and store.songs["orig_channels"][0] == 2
    mix, vocal, acc = (store.read_wave(k, 0) for k in ("mix_wave", "vocal_wave", "accomp_wave"))
    # the stem file's mixture is AAC-coded: close to, but not exactly, the sum of the stems
    residual = np.sum((mix - vocal - acc) ** 2) / np.sum(mix ** 2)
    assert 0 < residual < 0.05


@pytest.mark.slow
@needs_shared_data("mir-1k")
def test_real_mir1k(tmp_path):
    root = tmp_path / "Wavfile"
    root.mkdir()
    for src in sorted((SHARED_DATA / "mir-1k" / "Wavfile").glob("abjones_1_0[12].flac")) + \
            sorted((SHARED_DATA / "mir-1k" / "Wavfile").glob("Ani_1_01.flac")):
        (root / src.name).symlink_to(src)
    data_prep.main(["--mir1k-root", str(root), "--out", str(tmp_path / "out"), "--jobs", "1",
                    "--valid-fraction", "0"])
    store = WindowStore([tmp_path / "out" / "test.h5"])
    raw, sr = audio.read_audio(root / "Ani_1_01.flac")
    assert sr == 16000
    np.testing.assert_allclose(store.read_wave("vocal_wave", 0), audio.resample(raw[:, 1], sr)[:store.songs["length"][0]],
                               atol=1e-5)


# ---------------------------------------------------------------- more sources
def _stereo_clip(path, seconds, sr, rng, fmt=None, codec=None):
    n = int(seconds * sr)
    accompaniment = 0.2 * np.sin(2 * np.pi * 110 * np.arange(n) / sr) + 0.02 * rng.standard_normal(n)
    vocals = 0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / sr) * (np.arange(n) % sr < sr // 2)
    wav = path.with_suffix(".wav")
    sf.write(wav, np.stack([accompaniment, vocals], axis=1).astype(np.float32), sr)
    if codec:
        import subprocess
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", codec, str(path)], check=True)
        wav.unlink()
    return path


def test_mir1k_extra_opus_clips_are_training_only(tmp_path, rng):
    root = tmp_path / "Wavfile"
    root.mkdir()
    for name in ("fdps_1_01", "fdps_1_02", "leon_3_01"):
        _stereo_clip(root / f"{name}.opus", 4.0, 16000, rng, codec="libopus")
    data_prep.main(["--mir1k-extra-root", str(root), "--out", str(tmp_path / "out"), "--jobs", "1"])
    store = WindowStore([tmp_path / "out" / "train.h5"])
    assert sorted(store.songs["name"]) == ["fdps_1_01", "fdps_1_02", "leon_3_01"]
    assert set(store.songs["source"]) == {"mir1k-extra"}
    assert not (tmp_path / "out" / "valid.h5").exists() and not (tmp_path / "out" / "test.h5").exists()
    # right channel = vocals: the vocal has energy only in each second's first half
    vocal = store.read_wave("vocal_wave", 0)
    assert np.abs(vocal[2000:4000]).mean() > 10 * np.abs(vocal[8000:10000]).mean()


def test_folder_root_reads_any_layout_of_stems(tmp_path, rng):
    root = tmp_path / "collection"
    sr, n = 22050, 22050 * 4
    t = np.arange(n) / sr
    for subset, name, layout in (("train", "a", "accompaniment"), ("train", "b", "stems"), ("train", "c", "stems"),
                                 ("test", "d", "mixture")):
        folder = root / subset / name
        folder.mkdir(parents=True)
        vocals = (0.2 * np.sin(2 * np.pi * 330 * t))[:, None].repeat(2, axis=1)
        parts = {"guitar": 0.1 * rng.standard_normal((n, 2)), "piano": 0.1 * np.sin(2 * np.pi * 220 * t)[:, None].repeat(2, 1)}
        sf.write(folder / "vocals.flac", vocals.astype(np.float32), sr)
        if layout == "accompaniment":
            sf.write(folder / "accompaniment.wav", sum(parts.values()).astype(np.float32), sr)
        else:
            for part, x in parts.items():
                sf.write(folder / f"{part}.wav", x.astype(np.float32), sr)
        if layout == "mixture":
            sf.write(folder / "mixture.wav", (vocals + sum(parts.values())).astype(np.float32), sr)
    (root / "train" / "no-vocals").mkdir()
    sf.write(root / "train" / "no-vocals" / "guitar.wav", np.zeros((n, 2), np.float32), sr)
    data_prep.main(["--folder-root", str(root), "--out", str(tmp_path / "out"), "--jobs", "1", "--valid-fraction", "0.34"])
    train, valid, test = (WindowStore([tmp_path / "out" / f"{s}.h5"]) for s in ("train", "valid", "test"))
    assert sorted(train.songs["name"] + valid.songs["name"]) == ["a", "b", "c"] and valid.n_songs == 1
    assert test.songs["name"] == ["d"]
    for store in (train, test):
        for song in range(store.n_songs):
            mix, vocal, acc = (store.read_wave(k, song) for k in ("mix_wave", "vocal_wave", "accomp_wave"))
            np.testing.assert_allclose(mix, vocal + acc, atol=2e-4)        # stems sum to the mixture
            assert np.abs(acc).mean() > 0.05                                 # the other stems were summed in



def test_export_folder_round_trips_through_folder_root(tiny_musdb, tiny_cache, tmp_path):
    folder = tmp_path / "flac"
    data_prep.main(["--musdb-root", str(tiny_musdb), "--wav", "--valid-fraction", "0.2", "--jobs", "1",
                    "--export-folder", str(folder)])
    assert not list(folder.rglob("*.partial*")) and not list(folder.glob("*.h5"))
    data_prep.main(["--folder-root", str(folder), "--out", str(tmp_path / "out"), "--jobs", "1"])
    for split in ("train", "valid", "test"):
        direct, carried = WindowStore([tiny_cache / f"{split}.h5"]), WindowStore([tmp_path / "out" / f"{split}.h5"])
        assert carried.songs["name"] == direct.songs["name"], split           # the same split of the same songs
        for song in range(direct.n_songs):
            # 16-bit stems; a mixture within EXPORT_SUM_TOLERANCE of their sum is summed back, not carried
            for key in ("mix_wave", "vocal_wave", "accomp_wave"):
                np.testing.assert_allclose(carried.read_wave(key, song), direct.read_wave(key, song), atol=2e-4)

def test_export_leaves_out_a_summed_mixture_and_folder_source_names_the_songs(tmp_path, rng):
    """MIR-1K's mixture is its two channels' sum: exported without mixture.flac (a third less to carry to
    the GPU machine) and summed back; a mixture of its own (MUSDB18's AAC mix) is kept;
    --folder-source gives the carried songs their source's name for --source-weight."""
    clips = tmp_path / "Wavfile"
    clips.mkdir()
    for name in ("abjones_1_01", "abjones_1_02", "amy_1_01"):
        _stereo_clip(clips / f"{name}.wav", 4.0, 16000, rng)
    direct = tmp_path / "direct"
    data_prep.main(["--mir1k-root", str(clips), "--valid-fraction", "0", "--splits", "train", "--out", str(direct),
                    "--jobs", "1"])
    folder = tmp_path / "flac"
    data_prep.main(["--mir1k-root", str(clips), "--valid-fraction", "0", "--splits", "train", "--jobs", "1",
                    "--export-folder", str(folder)])
    assert sorted(p.name for p in (folder / "train" / "abjones_1_01").iterdir()) == ["accompaniment.flac", "vocals.flac"]
    carried = tmp_path / "carried"
    data_prep.main(["--folder-root", str(folder), "--folder-source", "mir1k", "--valid-fraction", "0",
                    "--splits", "train", "--out", str(carried), "--jobs", "1"])
    a, b = WindowStore([direct / "train.h5"]), WindowStore([carried / "train.h5"])
    assert set(b.songs["source"]) == {"mir1k"} and sorted(b.songs["name"]) == sorted(a.songs["name"])
    for song in range(a.n_songs):
        other = b.songs["name"].index(a.songs["name"][song])
        for key in ("mix_wave", "vocal_wave", "accomp_wave"):
            np.testing.assert_allclose(b.read_wave(key, other), a.read_wave(key, song), atol=1e-4)

    vorbis = tmp_path / "ogg"                                  # --export-format vorbis: what bench/gpu.py carries
    data_prep.main(["--mir1k-root", str(clips), "--valid-fraction", "0", "--splits", "train", "--jobs", "1",
                    "--export-folder", str(vorbis), "--export-format", "vorbis"])
    assert sorted(p.name for p in (vorbis / "train" / "abjones_1_01").iterdir()) == ["accompaniment.ogg", "vocals.ogg"]
    data_prep.main(["--folder-root", str(vorbis), "--folder-source", "mir1k", "--valid-fraction", "0",
                    "--splits", "train", "--out", str(tmp_path / "from-ogg"), "--jobs", "1"])
    c = WindowStore([tmp_path / "from-ogg" / "train.h5"])
    for song in range(a.n_songs):
        reference = a.read_wave("vocal_wave", song)
        coded = c.read_wave("vocal_wave", c.songs["name"].index(a.songs["name"][song]))[:len(reference)]
        snr = 10 * np.log10(np.sum(reference ** 2) / np.sum((reference[:len(coded)] - coded) ** 2))
        assert snr > 20, (a.songs["name"][song], snr)

    own_mix = tmp_path / "own-mix" / "train" / "song"          # a mixture that is not the stems' sum
    own_mix.mkdir(parents=True)
    sr = audio.SAMPLE_RATE
    stems = {k: (0.1 * rng.standard_normal(sr * 4)).astype(np.float32) for k in ("vocals", "accompaniment")}
    for stem, wave in {**stems, "mixture": 0.8 * (stems["vocals"] + stems["accompaniment"])}.items():
        sf.write(own_mix / f"{stem}.flac", wave, sr)
    data_prep.main(["--folder-root", str(own_mix.parents[1]), "--valid-fraction", "0", "--splits", "train",
                    "--jobs", "1", "--export-folder", str(tmp_path / "flac2")])
    assert (tmp_path / "flac2" / "train" / "song" / "mixture.flac").exists()
    with pytest.raises(SystemExit, match="folder-source mir1k"):
        data_prep.main(["--mir1k-root", str(clips), "--folder-root", str(folder), "--folder-source", "mir1k",
                        "--out", str(tmp_path / "x")])


def test_folder_root_valid_folder_fixes_the_validation_songs(tmp_path, rng):
    root = tmp_path / "collection"
    sr = audio.SAMPLE_RATE
    for subset, name in (("train", "a"), ("train", "b"), ("valid", "c"), ("test", "d")):
        folder = root / subset / name
        folder.mkdir(parents=True)
        for stem in ("vocals", "accompaniment"):
            sf.write(folder / f"{stem}.flac", (0.1 * rng.standard_normal(sr * 4)).astype(np.float32), sr)
    data_prep.main(["--folder-root", str(root), "--out", str(tmp_path / "out"), "--jobs", "1"])
    names = {s: WindowStore([tmp_path / "out" / f"{s}.h5"]).songs["name"] for s in ("train", "valid", "test")}
    assert names == {"train": ["a", "b"], "valid": ["c"], "test": ["d"]}

@pytest.mark.slow
@needs_shared_data("mir-1k-extra")
def test_real_mir1k_extra_reads_opus_clips_as_training_only(tmp_path):
    root = tmp_path / "Wavfile"
    root.mkdir()
    for src in sorted((SHARED_DATA / "mir-1k-extra" / "Wavfile").iterdir())[:3]:
        (root / src.name).symlink_to(src)
    data_prep.main(["--mir1k-extra-root", str(root), "--out", str(tmp_path / "out"), "--jobs", "1"])
    store = WindowStore([tmp_path / "out" / "train.h5"])
    assert store.n_songs == 3 and set(store.songs["source"]) == {"mir1k-extra"}
    assert store.songs["orig_sample_rate"][0] in (16000, 48000) and store.songs["orig_channels"][0] == 2
    assert not (tmp_path / "out" / "test.h5").exists()
    mix, vocal, acc = (store.read_wave(k, 0) for k in ("mix_wave", "vocal_wave", "accomp_wave"))
    np.testing.assert_allclose(mix, vocal + acc, atol=1e-5)
