import numpy as np
import pytest

import audio
from cache import WindowStore, resolve_caches
from conftest import encode


def test_window_count_and_valid_frames():
    spec = np.ones((audio.N_BINS, 300), np.complex64)
    windows, valid = audio.to_windows(spec)
    assert windows.shape == (3, audio.N_BINS, audio.WINDOW_FRAMES)
    assert valid.tolist() == [128, 128, 44]
    assert np.all(windows[2, :, 44:] == 0)
    np.testing.assert_array_equal(audio.from_windows(windows, valid), spec)


def test_cache_windows_rebuild_the_song_exactly(tiny_cache, tiny_musdb):
    """windows -> iSTFT with the stored phase -> the 11025 Hz input, exact length, tail kept."""
    store = WindowStore(resolve_caches([tiny_cache], "test"))
    for song in range(store.n_songs):
        length = store.songs["length"][song]
        mag = audio.from_windows(store.read_song("mix_mag", song), store.valid_frames[
            store.song_id == song])
        phase = audio.from_windows(store.read_song("mix_phase", song), store.valid_frames[
            store.song_id == song])
        rebuilt = audio.reconstruct(mag, phase, length)
        reference = store.read_wave("mix_wave", song)
        assert len(rebuilt) == length == len(reference)
        assert np.max(np.abs(rebuilt - reference)) < 1e-4
        # the reference itself is the input, resampled: check the tail is really there
        raw, sr = audio.read_audio(tiny_musdb / "test" / store.songs["name"][song] / "mixture.wav")
        expected = audio.prepare_waveform(raw, sr)
        assert len(expected) == length
        np.testing.assert_allclose(reference[-2000:], expected[-2000:], atol=1e-6)


def test_istft_keeps_nfft_1024():
    wave = audio.resample(np.random.default_rng(1).standard_normal(44100 * 3).astype(np.float32) * 0.2, 44100)
    spec = audio.stft(wave)
    assert spec.shape[0] == audio.N_BINS
    assert np.max(np.abs(audio.istft(spec, len(wave)) - wave)) < 1e-4


@pytest.mark.parametrize("n_fft,hop,length", [(1024, 256, 75008), (4096, 1024, 30003), (4096, 1115, 12345),
                                               (2048, 512, 3000)])
@pytest.mark.slow
def test_stft_matches_librosa(n_fft, hop, length):
    """audio.spectrogram / waveform replace librosa.stft / istft (import time): same numbers."""
    import librosa
    x = np.random.default_rng(n_fft + hop).standard_normal(length).astype(np.float32)
    ours = audio.spectrogram(x, n_fft, hop)
    ref = librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True, pad_mode="constant")
    assert ours.shape == ref.shape and ours.dtype == np.complex64
    assert np.max(np.abs(ours - ref)) < 1e-5 * np.max(np.abs(ref))
    masked = ref * np.random.default_rng(0).uniform(0, 1, ref.shape)     # not a consistent STFT
    back = audio.waveform(masked, n_fft, hop, length)
    expected = librosa.istft(masked, n_fft=n_fft, hop_length=hop, window="hann", center=True, length=length)
    assert back.shape == (length,) and back.dtype == np.float32
    assert np.max(np.abs(back - expected)) < 1e-5 * np.max(np.abs(expected))


def test_read_audio_errors(tmp_path):
    with pytest.raises(audio.AudioError, match="no such file"):
        audio.read_audio(tmp_path / "missing.wav")
    with pytest.raises(audio.AudioError, match="directory"):
        audio.read_audio(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(audio.AudioError, match="empty"):
        audio.read_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.mp3").write_bytes(b"this is not audio" * 100)
    with pytest.raises(audio.AudioError, match="junk.mp3"):
        audio.read_audio(tmp_path / "junk.mp3")


@pytest.fixture
def m4a(tmp_path, rng):
    """A 2.5 s stereo 22.05 kHz AAC file (libsndfile cannot read it: FFmpeg decodes it)."""
    import soundfile as sf
    wav = tmp_path / "song.wav"
    sf.write(str(wav), (0.2 * rng.standard_normal((int(2.5 * 22050), 2))).astype(np.float32), 22050)
    return encode(wav, tmp_path / "song.m4a", "-c:a", "aac")


@pytest.mark.skipif(not audio.has_pyav(), reason="PyAV not installed")
def test_in_process_decode_matches_the_ffmpeg_program(m4a, tmp_path, monkeypatch):
    import separation
    in_process, sr = audio.read_audio(m4a)
    sr_blocks, blocks = audio.decode_blocks(m4a)
    assert sr == sr_blocks == 22050 and in_process.shape[1] == 2 and len(in_process) >= int(2.5 * 22050)
    np.testing.assert_array_equal(np.concatenate(list(blocks)), in_process)
    # the same samples as the ffmpeg program decodes (no seek: -ss 0 re-primes the first AAC frame)
    source = separation.AudioSource(m4a)
    np.testing.assert_allclose(source.read(0, source.frames), in_process, atol=1e-6)
    source.close()
    part, _ = audio.read_audio(m4a, offset=0.5, duration=1.0)
    np.testing.assert_array_equal(part, in_process[11025:11025 + 22050])
    monkeypatch.setattr(audio, "has_pyav", lambda: False)
    program = separation.AudioSource(m4a, scratch=tmp_path)
    assert (program.sr, program.channels, program.frames) == (sr, 2, len(in_process))
    np.testing.assert_allclose(program.read(0, program.frames), in_process, atol=1e-6)
    program.close()


@pytest.mark.skipif(not audio.has_pyav(), reason="PyAV not installed")
def test_a_song_is_decoded_into_memory_and_a_long_recording_to_scratch(m4a, tmp_path, monkeypatch):
    import separation
    scratch_dir = tmp_path / "scratch"
    scratch_dir.mkdir()
    in_memory = separation.AudioSource(m4a, offset=0.5, duration=1.0, scratch=scratch_dir)
    assert in_memory._samples is not None and not list(scratch_dir.glob("*.wav"))
    expected = in_memory.read(-100, in_memory.frames + 200)          # zero-padded outside the range
    monkeypatch.setattr(audio, "DECODE_BLOCK", 4096)                    # several blocks
    monkeypatch.setattr(separation, "IN_MEMORY_BYTES", 3 * 4096 * 2 * 4)  # spills after the fourth
    spilled = separation.AudioSource(m4a, offset=0.5, duration=1.0, scratch=scratch_dir)
    assert spilled._samples is None and len(list(scratch_dir.glob("*.wav"))) == 1
    assert (spilled.sr, spilled.channels, spilled.frames) == (in_memory.sr, 2, 22050)
    np.testing.assert_array_equal(spilled.read(-100, spilled.frames + 200), expected)
    assert not expected[:100].any() and not expected[-100:].any() and expected[100:-100].any()
    spilled.close()
    in_memory.close()
    assert not list(scratch_dir.glob("*.wav"))                              # the scratch WAV went with close()


@pytest.mark.skipif(not audio.has_pyav(), reason="PyAV not installed")
def test_in_process_decode_refuses_non_audio_in_one_line(tmp_path):
    for name, data in (("junk.m4a", b"\x00\x00\x00\x18ftypM4A " + b"garbage" * 300), ("text.mka", b"hello" * 500)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(audio.AudioError, match=name.replace(".", r"\.") + ": not a readable audio file"):
            audio.decode_blocks(tmp_path / name)[1].__next__()


@pytest.mark.skipif(not audio.has_pyav(), reason="PyAV not installed")
def test_untrusted_files_are_decoded_in_a_child_process(m4a, tiny_run, tmp_path, monkeypatch):
    import separation

    def not_here(*args):
        raise AssertionError("decoded in the calling process")

    monkeypatch.setattr(audio, "decode_blocks", not_here)          # PyAV in this process
    monkeypatch.setattr(separation.shutil, "which", lambda name: None)      # no ffmpeg program: PyAV in a child
    separator = separation.Separator.from_run(tiny_run)
    paths = separator.separate_to_file(m4a, tmp_path / "out", isolate=True)
    assert paths["vocals"].exists()
    with pytest.raises(AssertionError, match="calling process"):            # the check can fail
        separator.separate_to_file(m4a, tmp_path / "out2")
    import scratch
    assert not list(scratch.scratch_dir().glob("*.wav"))      # a decode that fails leaves no scratch file
    # the page's length check without ffprobe reads the headers in a child too
    monkeypatch.setattr(audio, "pyav_duration", not_here)
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    assert abs(audio.duration(m4a) - 2.5) < 0.1
    # a decoder that dies (a crafted file crashing FFmpeg) is one AudioError, and the caller lives on
    monkeypatch.setattr(audio, "_CHILD", "import os; os.abort()")
    with pytest.raises(audio.AudioError, match=r"song\.m4a: the decoder failed on it \(exit status -6\)"):
        audio.decode_to_wav_isolated(m4a, tmp_path / "x.wav")
