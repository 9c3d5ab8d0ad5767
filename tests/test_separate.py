import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import audio
import runs
import separate
from conftest import ROOT
from separation import AudioSource, SongSeparator, WindowModel


def _song(path, seconds, sr, channels, rng):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * 330 * t)[:, None] + 0.05 * rng.standard_normal((len(t), channels))
    sf.write(path, x.astype(np.float32), sr)
    return path


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_formats_rate_and_channels(tiny_run, tmp_path, rng, fmt):
    song = _song(tmp_path / "in.wav", 4.0, 22050, 2, rng)
    separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / "out"), "--format", fmt])
    for stem in ("vocals", "accompaniment"):
        data, sr = sf.read(tmp_path / "out" / "in" / f"{stem}.{fmt}", always_2d=True)
        assert sr == 22050 and data.shape[1] == 2
        if fmt in ("wav", "flac"):
            assert len(data) == int(4.0 * 22050)
    assert not list((tmp_path / "out").rglob("*.partial.*"))


@pytest.mark.parametrize("sr,channels", [(8000, 1), (48000, 6)])
def test_odd_rates_and_channel_counts(tiny_run, tmp_path, rng, sr, channels):
    song = _song(tmp_path / "odd.flac", 3.0, sr, channels, rng)
    separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / "out")])
    vocals, out_sr = sf.read(tmp_path / "out" / "odd" / "vocals.wav", always_2d=True)
    accomp, _ = sf.read(tmp_path / "out" / "odd" / "accompaniment.wav", always_2d=True)
    original, _ = sf.read(song, always_2d=True)
    assert out_sr == sr and vocals.shape == original.shape
    np.testing.assert_allclose(vocals + accomp, original, atol=1e-4)     # the stems add up to the input


def test_chunked_matches_whole_file(tiny_run, tmp_path, rng):
    song = _song(tmp_path / "long.wav", 14.0, 44100, 2, rng)
    separator = WindowModel.from_run(tiny_run)

    def run(chunk_windows, band):
        blocks = []
        SongSeparator(separator, band, chunk_windows).run(AudioSource(song), lambda v, a: blocks.append(v))
        return np.concatenate(blocks)

    for band in ("full", "paper"):
        whole, chunked = run(100, band), run(2, band)
        assert whole.shape == chunked.shape
        snr = 10 * np.log10(np.sum(whole ** 2) / np.sum((whole - chunked) ** 2))
        assert snr > 30, (band, snr)
        # no click: the largest sample-to-sample jump is no bigger than in the whole-file result
        assert np.max(np.abs(np.diff(chunked, axis=0))) < 1.5 * np.max(np.abs(np.diff(whole, axis=0))) + 1e-3


def test_paper_band_is_mono_11025(tiny_run, tmp_path, rng):
    song = _song(tmp_path / "s.wav", 3.0, 44100, 2, rng)
    separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / "o"), "--band", "paper"])
    info = sf.info(str(tmp_path / "o" / "s" / "vocals.wav"))
    assert info.samplerate == audio.SAMPLE_RATE and info.channels == 1


def test_offset_duration_and_template(tiny_run, tmp_path, rng):
    song = _song(tmp_path / "t.wav", 6.0, 16000, 1, rng)
    separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / "o"), "--offset", "1",
                   "--duration", "2.5", "--filename-format", "{instrument}/{filename}.{codec}"])
    assert sf.info(str(tmp_path / "o" / "vocals" / "t.wav")).frames == int(2.5 * 16000)
    assert (tmp_path / "o" / "accompaniment" / "t.wav").exists()


def test_m4a_through_ffmpeg(tiny_run, tmp_path, rng):
    wav = _song(tmp_path / "a.wav", 3.0, 44100, 2, rng)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(tmp_path / "a.m4a")], check=True)
    separate.main([str(tmp_path / "a.m4a"), "--run", str(tiny_run), "--out", str(tmp_path / "o")])
    assert sf.info(str(tmp_path / "o" / "a" / "vocals.wav")).channels == 2


def test_bad_inputs_each_get_one_line_and_the_rest_is_done(tiny_run, tmp_path, rng, capsys):
    good = _song(tmp_path / "good.wav", 3.0, 44100, 2, rng)
    (tmp_path / "empty.mp3").write_bytes(b"")
    (tmp_path / "junk.mp3").write_bytes(b"not audio at all" * 64)
    (tmp_path / "folder").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        separate.main([str(tmp_path / "empty.mp3"), str(tmp_path / "junk.mp3"), str(tmp_path / "folder"),
                       str(tmp_path / "missing.wav"), str(good), "--run", str(tiny_run), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "empty.mp3: empty file" in err and "junk.mp3: not a readable audio file" in err
    assert "folder: is a directory" in err and "missing.wav: no such file" in err
    assert (tmp_path / "o" / "good" / "vocals.wav").exists()


def test_unwritable_output_and_missing_weights(tiny_run, tmp_path, rng, capsys):
    good = _song(tmp_path / "good.wav", 3.0, 44100, 2, rng)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(SystemExit):
        separate.main([str(good), "--run", str(tiny_run), "--out", str(blocker)])
    assert "cannot write there" in capsys.readouterr().err
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "empty_run" / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="no best.weights.h5"):
        separate.main([str(good), "--run", str(tmp_path / "empty_run")])


def test_no_model_says_how_to_train_one(tmp_path, monkeypatch, rng):
    monkeypatch.setattr(runs, "default_run", lambda: None)
    with pytest.raises(SystemExit, match="python data_prep.py && python train.py"):
        separate.main([str(_song(tmp_path / "x.wav", 1.0, 8000, 1, rng))])


def test_model_picks_a_shipped_model_by_name(tiny_run, tmp_path, monkeypatch, rng, capsys):
    song = _song(tmp_path / "s.wav", 2.0, 44100, 2, rng)
    monkeypatch.setattr(runs, "SHIPPED_MODELS", {"fast": tmp_path / "none", "quality": tiny_run})
    separate.main([str(song), "--model", "quality", "--out", str(tmp_path / "o")])
    assert str(tiny_run) in capsys.readouterr().err and (tmp_path / "o" / "s" / "vocals.wav").exists()
    with pytest.raises(SystemExit, match="'fast' model is not in this checkout .present: quality"):
        separate.main([str(song), "--model", "fast"])
    with pytest.raises(SystemExit):             # one model: a name or a folder, not both
        separate.main([str(song), "--model", "quality", "--run", str(tiny_run)])
    assert "not allowed with argument" in capsys.readouterr().err


def test_griffin_lim_phase_keeps_shapes_and_the_stems_add_up(tiny_run, tmp_path, rng):
    song = _song(tmp_path / "gl.wav", 3.0, 22050, 2, rng)
    for band in ("full", "paper"):
        separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / band), "--phase", "griffin-lim",
                       "--band", band])
        vocals, sr = sf.read(tmp_path / band / "gl" / "vocals.wav", always_2d=True)
        accomp, _ = sf.read(tmp_path / band / "gl" / "accompaniment.wav", always_2d=True)
        assert np.all(np.isfinite(vocals)) and np.abs(vocals).max() > 0
        if band == "full":
            original, _ = sf.read(song, always_2d=True)
            assert sr == 22050 and vocals.shape == original.shape
            np.testing.assert_allclose(vocals + accomp, original, atol=1e-4)
        else:
            assert sr == audio.SAMPLE_RATE and vocals.shape[1] == 1


def test_shift_averaging_covers_every_frame_once_per_grid(rng):
    """separation.song_source_mags (bench/postfilter.py's shift trick): a model returning its input
    gives the input back for any number of grids, and each grid's windows see a different part of
    the song."""
    from separation import song_source_mags

    class Echo:
        calls = []

        def source_mags(self, windows):
            self.calls.append(windows[0, :, :4, 0].copy())
            return np.concatenate([windows, 2 * windows], axis=-1)

    mix_mag = rng.random((audio.N_BINS, 300)).astype(np.float32)
    for shifts in (1, 2, 4):
        model = Echo()
        model.calls = []
        out = song_source_mags(model, mix_mag, shifts)
        assert out.shape == (audio.N_BINS, 300, 2)
        np.testing.assert_allclose(out[..., 0], mix_mag, rtol=1e-6)
        np.testing.assert_allclose(out[..., 1], 2 * mix_mag, rtol=1e-6)
        assert len(model.calls) == shifts
        starts = [k * audio.WINDOW_FRAMES // shifts for k in range(shifts)]
        for first_frames, start in zip(model.calls, starts):
            np.testing.assert_array_equal(first_frames, mix_mag[:, start:start + 4])


def test_each_postfilter_pass_multiplies_its_mask_in(tiny_cache):
    """bench/postfilter.py --passes: a model that always says "vocals = accompaniment" masks by 1/2
    per pass: one pass gives half the mixture, two a quarter (passes 0 = the mixture itself)."""
    import importlib.util
    import scoring
    spec = importlib.util.spec_from_file_location("postfilter", ROOT / "bench" / "postfilter.py")
    postfilter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(postfilter)

    class Halves:
        def source_mags(self, windows):
            return np.concatenate([windows, windows], axis=-1)

    store = scoring.test_store([str(tiny_cache / "test.h5")])
    mixture = postfilter.vocal_waves(store, Halves(), 1, 1.0, passes=0)
    for passes in (1, 2):
        for wave, mix in zip(postfilter.vocal_waves(store, Halves(), 1, 1.0, passes), mixture):
            np.testing.assert_allclose(wave, mix * 0.5 ** passes, atol=1e-5)


def test_a_whole_song_window_is_the_windowed_chain_when_the_song_is_one_window(tiny_run, rng):
    """bench/postfilter.py --shifts 0: the run's weights in an open-length network; on exactly one
    window of frames it must give what the windowed chain gives, and any length comes back whole."""
    import importlib.util
    from separation import WindowModel, song_source_mags
    spec = importlib.util.spec_from_file_location("postfilter", ROOT / "bench" / "postfilter.py")
    postfilter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(postfilter)
    window_model = WindowModel.from_run(tiny_run)
    mix_mag = rng.random((audio.N_BINS, audio.WINDOW_FRAMES)).astype(np.float32)
    np.testing.assert_allclose(postfilter.whole_song_mags(window_model, mix_mag),
                               song_source_mags(window_model, mix_mag), rtol=1e-4, atol=1e-4)
    assert postfilter.whole_song_mags(window_model, mix_mag[:, :77]).shape[:2] == (audio.N_BINS, 77)


def test_freed_memory_is_kept_for_reuse_on_glibc():
    import platform
    import hardware
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert hardware.reuse_freed_memory() is True


def test_the_machine_line_names_the_isa_caps_in_effect(monkeypatch):
    import hardware
    for name in hardware.ISA_CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert "capped" not in hardware.describe(with_tensorflow=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("SEPARATE_OPENVINO_PRECISION", "f32")
    assert "(capped: ONEDNN_MAX_CPU_ISA=AVX2 SEPARATE_OPENVINO_PRECISION=f32)" in hardware.describe(with_tensorflow=False)


def test_a_separator_leaves_every_openblas_on_one_thread():
    # in a fresh process: the limit is process-wide
    pytest.importorskip("threadpoolctl")
    probe = ("import sys; sys.path.insert(0, %r)\n"
             "import hardware, threadpoolctl, scipy.linalg\n"
             "before = [i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']\n"
             "assert hardware.one_blas_thread() is True\n"
             "after = [i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']\n"
             "print(before, after)" % str(ROOT))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = (json.loads(part) for part in out.stdout.strip().replace("] [", "]|[").split("|"))
    assert before and all(n == 2 for n in before)      # NumPy's and SciPy's own OpenBLAS
    assert after and all(n == 1 for n in after)


@pytest.mark.parametrize("sr,shift", [(44100, 0.0), (44100, 0.004), (48000, 0.0), (8000, 0.0)])
def test_the_mask_on_a_native_grid_is_the_linear_interpolation_of_the_model_grid(rng, sr, shift):
    from separation import interpolate_mask, native_stft_params
    mask = rng.random((audio.N_BINS, 40)).astype(np.float32)
    n_fft, hop = native_stft_params(sr)
    n_frames = 30
    out = interpolate_mask(mask, sr, n_fft // 2 + 1, n_frames, hop, n_fft, "zeros", shift)
    model_freqs = np.arange(audio.N_BINS) * audio.SAMPLE_RATE / audio.N_FFT
    model_times = np.arange(mask.shape[1]) * audio.HOP / audio.SAMPLE_RATE
    times = np.arange(n_frames) * hop / sr - shift
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    inside = freqs <= model_freqs[-1]
    in_time = np.stack([np.interp(times, model_times, row) for row in mask])
    expected = np.stack([np.interp(freqs[inside], model_freqs, col) for col in in_time.T], axis=1)
    np.testing.assert_allclose(out[inside], expected, atol=1e-6)
    assert not out[~inside].any()
    if sr == 44100 and shift == 0.0:         # the native grid is the model's: the mask itself
        np.testing.assert_array_equal(out[:audio.N_BINS], mask[:, :n_frames])


def test_channels_option_and_its_default(tiny_run, tmp_path, rng):
    import separation
    assert separation.Separator.from_run(tiny_run).song_separator.channels == separation.DEFAULT_CHANNELS == "each"
    song = _song(tmp_path / "c.wav", 3.0, 22050, 2, rng)
    for mode in ("each", "mix"):
        separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / mode), "--channels", mode])
    each, _ = sf.read(tmp_path / "each" / "c" / "vocals.wav")
    mix, _ = sf.read(tmp_path / "mix" / "c" / "vocals.wav")
    assert each.shape == mix.shape and not np.allclose(each, mix, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        separation.Separator.from_run(tiny_run, channels="left")


@pytest.mark.parametrize("band,wiener", [("full", "1"), ("paper", "0")])
def test_bench_stages_finds_every_stage(tiny_run, tmp_path, rng, capsys, band, wiener):
    """bench/stages.py maps its stages to separation's functions by name: each stage must still be
    found (time > 0) for a stereo 44.1 kHz song, so a renamed function shows up here; a call nested in
    another of its stage (soft_mask in vocal_spectrum on the paper band) is counted once."""
    import importlib.util
    import sys
    sys.path.append(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("stages", ROOT / "bench" / "stages.py")
    stages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stages)
    song = _song(tmp_path / "song.wav", 4.0, 44100, 2, rng)
    stages.main([str(song), str(song), "--run", str(tiny_run), "--wiener-iterations", wiener, "--band", band])
    rows = {line[:45].strip(): float(line[45:].split()[0]) for line in capsys.readouterr().out.splitlines()
            if line[:45].strip() in [*stages.STAGES, "total (profiled)"]}
    assert set(rows) == {*stages.STAGES, "total (profiled)"}
    assert all(rows[stage] > 0 for stage in stages.STAGES), rows
    assert sum(rows[stage] for stage in stages.STAGES) < rows["total (profiled)"]


@pytest.mark.parametrize("speed", [0.944, 1.059])
def test_ratios_heard_at_another_speed_map_back_onto_the_songs_grid(speed):
    """A pattern linear in (bin, frame) of the song, sampled where the played version's bins and frames
    lie (bin k -> k / speed, frame t -> t * speed), comes back exactly; bins a faster version pushed
    above the model's band get no weight."""
    import separation
    n_frames = 300
    played_frames = int(np.ceil(n_frames / speed)) + 1
    kp, tp = np.meshgrid(np.arange(audio.N_BINS), np.arange(played_frames), indexing="ij")
    pattern = lambda k, t: 0.2 + 0.5 * k / audio.N_BINS + 0.2 * t / n_frames           # noqa: E731
    played = np.stack([pattern(kp / speed, tp * speed), 1 - pattern(kp / speed, tp * speed)]).astype(np.float32)
    back, inside = separation.unplayed_ratios(played, speed, n_frames)
    k, t = np.meshgrid(np.arange(audio.N_BINS), np.arange(n_frames), indexing="ij")
    rows = inside[:, 0] > 0
    np.testing.assert_allclose(back[0][rows], pattern(k, t)[rows], atol=1e-5)
    np.testing.assert_allclose(back[1][rows], 1 - pattern(k, t)[rows], atol=1e-5)
    assert rows.sum() == (audio.N_BINS if speed < 1 else int((audio.N_BINS - 1) / speed) + 1)


def test_a_song_played_faster_is_shorter_and_higher():
    t = np.arange(2 * audio.SAMPLE_RATE) / audio.SAMPLE_RATE
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    played = audio.played_at(tone, 1.059)
    assert abs(len(played) - len(tone) / 1.059) <= 2
    peak = np.argmax(np.abs(np.fft.rfft(played))) * audio.SAMPLE_RATE / len(played)
    assert peak == pytest.approx(1059, abs=2)
    assert audio.played_at(tone, 1.0) is tone


def test_test_time_speeds_keep_the_stems_summing_to_the_input(tiny_run, tmp_path, rng):
    import separation
    song = _song(tmp_path / "s.wav", 7.0, 44100, 2, rng)
    wave, sr = sf.read(song, dtype="float32")
    plain = separation.Separator.from_run(tiny_run).separate(wave, sr)
    assert separation.Separator.from_run(tiny_run).song_separator.speeds == (1.0,)         # off unless chosen
    np.testing.assert_array_equal(plain["vocals"], separation.Separator.from_run(tiny_run, speeds=(1.0,)).separate(wave, sr)["vocals"])
    for band in ("full", "paper"):
        stems = separation.Separator.from_run(tiny_run, band=band, speeds=(1.0, 0.944, 1.059)).separate(wave, sr)
        reference = separation.Separator.from_run(tiny_run, band=band).separate(wave, sr)
        assert stems["vocals"].shape == reference["vocals"].shape
        assert not np.allclose(stems["vocals"], reference["vocals"], atol=1e-6)
        mix = wave if band == "full" else reference["vocals"] + reference["accompaniment"]    # 11025 Hz mono
        np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], mix, atol=1e-5)
    for bad in ((0.944,), (1.0, 2.0), ()):
        with pytest.raises(ValueError, match="speeds must include 1"):
            separation.Separator.from_run(tiny_run, speeds=bad)
    # "one-input": a stereo song heard channel by channel is separated as without speeds, its mix is not
    one_input = separation.Separator.from_run(tiny_run, speeds=(1.0, 0.944, 1.059))
    one_input.song_separator.speeds_when = "one-input"
    np.testing.assert_array_equal(one_input.separate(wave, sr)["vocals"], plain["vocals"])
    one_input.song_separator.channels = "mix"
    always = separation.Separator.from_run(tiny_run, channels="mix", speeds=(1.0, 0.944, 1.059))
    np.testing.assert_array_equal(one_input.separate(wave, sr)["vocals"], always.separate(wave, sr)["vocals"])
    # "mono": only a mono song gets them, whatever the channel mode
    one_input.song_separator.speeds_when = "mono"
    plain_mix = separation.Separator.from_run(tiny_run, channels="mix").separate(wave, sr)
    np.testing.assert_array_equal(one_input.separate(wave, sr)["vocals"], plain_mix["vocals"])
    np.testing.assert_array_equal(one_input.separate(wave[:, 0], sr)["vocals"], always.separate(wave[:, 0], sr)["vocals"])


def test_speeds_option_rejects_what_it_cannot_do(tiny_run, tmp_path, rng, capsys):
    song = _song(tmp_path / "o.wav", 2.0, 22050, 1, rng)
    for bad, says in ((["0.944"], "must include 1"), (["1", "1.5"], "outside 0.8..1.25")):
        with pytest.raises(SystemExit) as exc:
            separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / "o"), "--speeds", *bad])
        assert exc.value.code == 2 and says in capsys.readouterr().err
    separate.main([str(song), "--run", str(tiny_run), "--out", str(tmp_path / "o"), "--speeds", "1", "1.059"])
    assert (tmp_path / "o" / "o" / "vocals.wav").exists()


def test_bench_speeds_scores_each_variant_song_by_song(tiny_run, tiny_cache, tmp_path):
    import json
    import sys
    sys.path.append(str(ROOT / "bench"))
    import speeds
    out = tmp_path / "speeds"
    speeds.main(["--run", str(tiny_run), "--data", str(tiny_cache), "--split", "test", "--channels", "mix",
                 "--variants", "1", "1,1.059", "--jobs", "1", "--out", str(out)])
    result = json.loads(out.with_suffix(".json").read_text())
    assert list(result["rows"]) == ["1", "1,1.059"] and result["channels"] == "mix"
    for row in result["rows"].values():
        assert len(row["songs"]["vocals_SDR"]) == 2 and np.isfinite(row["scores"]["vocals_SDR_median"])
    assert result["rows"]["1"]["songs"] != result["rows"]["1,1.059"]["songs"]
    assert "| 1,1.059 |" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit):
        speeds.main(["--run", str(tiny_run), "--variants", "0.944", "--out", str(out)])
