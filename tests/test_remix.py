"""Online remixing (sources.py, remix.py, pipeline.remix_dataset), two-source training and the Wiener path."""
import json

import numpy as np
import pytest

import audio
import remix
import separation
import sources
from conftest import ROOT


def _tiny_sources(path, rng, seconds=4.0):
    """Two MUSDB18-like songs (four stems) and two MIR-1K-like clips (vocals + accompaniment) of noise."""
    n = int(seconds * audio.SAMPLE_RATE)
    writer = sources.SourceWriter(path, {"sample_rate": audio.SAMPLE_RATE})
    for i in range(2):
        writer.add({s: (0.1 * rng.standard_normal(n)).astype(np.float32)
                    for s in ("vocals", *sources.MUSDB_STEMS)}, f"musdb-{i}", "musdb")
    for i in range(2):
        writer.add({s: (0.1 * rng.standard_normal(n + 999 * i)).astype(np.float32)
                    for s in ("vocals", "accompaniment")}, f"clip-{i}", "mir1k")
    return writer.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return sources.SourceStore(_tiny_sources(tmp_path_factory.mktemp("sources") / "sources.h5",
                                             np.random.default_rng(1)))


def test_source_store_round_trip(store):
    assert len(store) == 4 and list(store.songs_with("drums")) == [0, 1]
    assert list(store.songs_with("accompaniment")) == [2, 3]
    assert isinstance(store._stem("vocals"), np.memmap)            # contiguous: mapped, not chunk-read
    tail = store.read("vocals", 3, int(store.length[3]) - 10, 100)
    assert np.all(tail[10:] == 0) and np.any(tail[:10] != 0)        # zero-padded past the song's end
    assert np.all(store.read("drums", 2, 0, 50) == 0)               # a stem the song does not have


def test_batches_have_window_shapes_and_are_deterministic(store):
    sampler = remix.RemixSampler(store, seed=3)
    mix, vocal, accomp = sampler.batch(5, 6)
    assert mix.shape == vocal.shape == accomp.shape == (6, *audio.WINDOW_SHAPE)
    assert mix.dtype == np.float32
    again = sampler.batch(5, 6)
    assert all(np.array_equal(a, b) for a, b in zip((mix, vocal, accomp), again))
    assert not np.array_equal(mix, sampler.batch(6, 6)[0])
    assert not np.array_equal(mix, remix.RemixSampler(store, seed=4).batch(5, 6)[0])


def test_mixture_window_is_the_sum_of_its_sources(store):
    sampler = remix.RemixSampler(store, seed=0)
    vocals, accomp = sampler.waveforms(2, 4)
    mix, vocal_mag, accomp_mag = sampler.batch(2, 4)
    # the magnitudes are those of the sources' own STFTs, and the mixture's is the STFT of their sum
    magnitudes = lambda x: np.abs(audio.excerpt_stft(x))[..., None]
    np.testing.assert_allclose(vocal_mag, magnitudes(vocals), atol=1e-5)
    np.testing.assert_allclose(accomp_mag, magnitudes(accomp), atol=1e-5)
    np.testing.assert_allclose(mix, magnitudes(vocals + accomp), atol=1e-4)
    # and the excerpt STFT is the song STFT's frames at that offset
    wave = store.read("vocals", 0, 0, int(store.length[0]))
    full = audio.stft(wave)
    start = 7 * audio.HOP - audio.N_FFT // 2
    excerpt = audio.excerpt_stft(wave[None, start:start + audio.EXCERPT_SAMPLES])[0]
    np.testing.assert_allclose(excerpt, full[:, 7:7 + audio.WINDOW_FRAMES], atol=1e-4)


def test_label_spectra_are_the_magnitudes_complex_parts(store):
    """The SDR loss's spectra come out of the same STFTs as the magnitudes, block by block (a batch
    that is not a multiple of audio.STFT_BLOCK included)."""
    sampler = remix.RemixSampler(store, seed=2)
    size = audio.STFT_BLOCK + 3
    mags = sampler.batch(4, size)
    *again, spectra = sampler.batch_with_spectra(4, size)
    assert spectra.shape == (size, *audio.WINDOW_SHAPE[:-1], 6) and spectra.dtype == np.float32
    for c, mag in enumerate(mags):
        assert np.array_equal(mag, again[c])
        np.testing.assert_allclose(np.hypot(spectra[..., 2 * c], spectra[..., 2 * c + 1]), mag[..., 0], rtol=1e-5,
                                   atol=1e-6)
    # mixture = vocals + accompaniment, part by part
    np.testing.assert_allclose(spectra[..., :2], spectra[..., 2:4] + spectra[..., 4:6], atol=1e-6)


def test_vocal_free_share_and_stem_choice(store):
    silent = remix.RemixSampler(store, remix.RemixConfig(vocal_free=1.0), seed=0)
    assert np.all(silent.batch(0, 4)[1] == 0)
    sampler = remix.RemixSampler(store, remix.RemixConfig(vocal_free=0.0), seed=0)
    assert np.all(sampler.batch(0, 8)[1].reshape(8, -1).max(axis=1) > 0)


def _song_mix_parts(store, vocal):
    """(song, offset, that song's accompaniment at that offset) for a vocal excerpt, found by its first
    samples (noise: unique)."""
    head = vocal[:64]
    for song in store.songs_with("vocals"):
        wave = store.read("vocals", song, 0, int(store.length[song]))
        hits = np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(wave, 64) == head, axis=1))
        if len(hits):
            stems = sources.MUSDB_STEMS if store.start["drums"][song] >= 0 else ("accompaniment",)
            offset = int(hits[0])
            return int(song), offset, sum(store.read(s, song, offset, audio.EXCERPT_SAMPLES) for s in stems)
    raise AssertionError("vocal excerpt found in no song")


def test_coherent_examples_are_one_songs_real_mix(store):
    unit = dict(vocal_free=0.0, stem_dropout=0.0, gain_low=1.0, gain_high=1.0)
    vocals, accomp = remix.RemixSampler(store, remix.RemixConfig(**unit, coherent=1.0), seed=2).waveforms(0, 8)
    songs = set()
    for vocal, acc in zip(vocals, accomp):
        song, _, real_accomp = _song_mix_parts(store, vocal)
        np.testing.assert_allclose(acc, real_accomp, atol=1e-6)     # same song, same offset, every stem
        songs.add(song)
    assert len(songs) > 1
    # the default (coherent 0) draws the accompaniment from other songs: the same check fails there
    vocals, accomp = remix.RemixSampler(store, remix.RemixConfig(**unit), seed=2).waveforms(0, 8)
    assert not all(np.allclose(acc, _song_mix_parts(store, vocal)[2]) for vocal, acc in zip(vocals, accomp))


def test_data_prep_writes_sources_of_training_songs_only(tiny_musdb, tmp_path):
    import data_prep
    out = tmp_path / "prep"
    data_prep.main(["--musdb-root", str(tiny_musdb), "--wav", "--out", str(out), "--jobs", "1",
                    "--valid-fraction", "0.2", "--sources", "--splits", "train"])
    store = sources.SourceStore(out)
    train = json.loads(__import__("h5py").File(out / "train.h5")["/"].attrs["params"])["songs"]
    assert sorted(store.names) == sorted(train)          # no validation or test song
    assert all(len(store.songs_with(s)) == len(store) for s in ("vocals", *sources.MUSDB_STEMS))
    assert not list(out.glob("*.partial*"))


def test_missing_sources_file_is_one_clear_error(tmp_path):
    with pytest.raises(sources.SourceError, match="data_prep.py --sources"):
        sources.SourceStore(tmp_path)


# ---------------------------------------------------------------- masks and Wiener
def test_soft_mask_is_the_models_own_mask_for_a_vocals_only_model(rng):
    mix_spec = (rng.standard_normal((40, 30, 2)) + 1j * rng.standard_normal((40, 30, 2))).astype(np.complex64)
    mix_mag = np.abs(mix_spec).mean(axis=-1)
    vocal_est = mix_mag[..., None] * rng.uniform(0, 1.3, (40, 30, 1))
    ratios = separation.source_ratios(mix_mag, vocal_est)
    np.testing.assert_allclose(ratios[0] + ratios[1], 1.0, atol=1e-6)
    out = separation.vocal_spectrum(mix_spec, ratios, 0)
    np.testing.assert_allclose(out, mix_spec * np.clip(vocal_est / mix_mag[..., None], 0, 1), atol=1e-5)


def test_two_source_soft_mask_and_wiener(rng):
    mix_spec = (rng.standard_normal((33, 50, 2)) + 1j * rng.standard_normal((33, 50, 2))).astype(np.complex64)
    mix_mag = np.abs(mix_spec).mean(axis=-1)
    est = mix_mag[..., None] * rng.uniform(0, 1, (33, 50, 2))
    ratios = separation.source_ratios(mix_mag, est)
    soft = separation.vocal_spectrum(mix_spec, ratios, 0)
    v, a = ratios[0][..., None], ratios[1][..., None]
    np.testing.assert_allclose(soft, mix_spec * v / (v + a), atol=1e-5)
    wiener = separation.vocal_spectrum(mix_spec, ratios, 1)
    assert wiener.shape == mix_spec.shape and not np.allclose(wiener, soft)
    # the Wiener filters of the two sources add up to the identity: the vocals stay within the mixture
    assert np.abs(wiener).max() <= np.abs(mix_spec).max() * 1.01


@pytest.fixture(scope="module")
def two_source_run(tiny_cache, store, tmp_path_factory):
    import train
    run_dir = tmp_path_factory.mktemp("two") / "run"
    train.main(["--data", str(tiny_cache), "--online-remix", str(store.path), "--target", "masked2",
                "--norm", "time", "--scaler", "robust", "--loss", "mse", "--run-dir", str(run_dir),
                "--base-filters", "2", "--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "2",
                "--verbose", "0", "--eager"])
    return run_dir


def test_two_source_run_trains_separates_and_sums_to_the_input(two_source_run, rng):
    config = json.loads((two_source_run / "config.json").read_text())
    assert config["status"] == "complete" and config["data"]["online_remix"]["songs"] == 4
    song = (0.1 * rng.standard_normal((3 * 22050, 2))).astype(np.float32)
    for iterations in (0, 1):
        separator = separation.Separator.from_run(two_source_run, backend="keras", wiener_iterations=iterations)
        assert separator.window_model.source_mags(np.ones((1, *audio.WINDOW_SHAPE), np.float32)).shape[-1] == 2
        stems = separator.separate(song, 22050)
        assert stems["vocals"].shape == song.shape
        np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], song, atol=1e-5)


@pytest.mark.parametrize("target,loss,eager", [("direct2", "mse", True), ("masked2", "sdr", True),
                                               ("direct2", "sdrmask", False)])
def test_two_source_targets_and_sdr_loss_train_on_fixed_windows(tiny_cache, tmp_path, target, loss, eager):
    """The accompaniment and the spectra of fixed windows are derived per song (pipeline.WindowReader).
    The shipped recipe (direct2, sdrmask) runs as a traced graph, the others eagerly (the suite's time)."""
    import train
    run_dir = tmp_path / "r"
    train.main(["--data", str(tiny_cache), "--target", target, "--loss", loss, "--norm", "time", "--scaler", "robust",
                "--run-dir", str(run_dir), "--base-filters", "2", "--batch-size", "2", "--epochs", "1",
                "--steps-per-epoch", "2", "--verbose", "0", *(["--eager"] if eager else [])])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "complete" and np.isfinite(config["results"]["best_val_loss"])


@pytest.mark.parametrize("source_kind", ["fixed", "remix"])
@pytest.mark.parametrize("target,loss", [("direct", "mae"), ("masked2", "sdrmask")])
def test_tf_data_and_pydataset_give_the_same_batches(tiny_cache, store, source_kind, target, loss):
    """tf.data (TensorFlow) and keras.utils.PyDataset (JAX, PyTorch) wrap the same NumPy reader and
    model_io: a run's data does not depend on the backend, and the label's channels are as declared."""
    import cache
    import pipeline
    cfg = pipeline.PipelineConfig(norm="time", scaler="robust", target=target, loss=loss, batch_size=3, seed=5)
    if source_kind == "fixed":
        source = cache.WindowStore(cache.resolve_caches([str(tiny_cache)], "train"))
        tf_batches = pipeline.train_dataset(source, cfg, epochs=1, steps_per_epoch=2)
    else:
        source = remix.RemixSampler(store, seed=5)
        tf_batches = pipeline.remix_dataset(source, cfg, epochs=1, steps_per_epoch=2)
    numpy_batches = pipeline.numpy_train_dataset(source, cfg, steps_per_epoch=2)
    for k, (x, y) in enumerate(tf_batches):
        assert y.shape == (3, *audio.WINDOW_SHAPE[:-1], pipeline.label_channels(cfg))
        nx, ny = numpy_batches[k]
        assert np.array_equal(x.numpy(), nx) and np.array_equal(y.numpy(), ny)
    assert k == 1


def test_window_reader_derives_the_accompaniment_of_cached_windows(tiny_cache):
    import cache
    import pipeline
    store = cache.WindowStore(cache.resolve_caches([str(tiny_cache)], "train"))
    reader = pipeline.WindowReader(store)
    index = int(store.songs["first_window"][1]) + 1
    accomp = reader.read("accomp_mag", index)
    spectra = reader.read("spectra", index)
    assert accomp.shape == audio.WINDOW_SHAPE and spectra.shape == (*audio.WINDOW_SHAPE[:-1], 6)
    np.testing.assert_allclose(np.hypot(spectra[..., 0], spectra[..., 1]), store.read("mix_mag", index)[..., 0],
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.hypot(spectra[..., 4], spectra[..., 5]), accomp[..., 0], rtol=1e-4, atol=1e-4)
    # the mixture's spectrum is the sum of the sources' (stems sum to the mixture in the caches)
    mix = spectra[..., 0] + 1j * spectra[..., 1]
    total = (spectra[..., 2] + spectra[..., 4]) + 1j * (spectra[..., 3] + spectra[..., 5])
    assert np.abs(mix - total).max() <= 1e-3 * np.abs(mix).max()
    # the window of the song's own spectra, whatever was read in between
    song_windows = pipeline.song_spectra(store, 1)
    np.testing.assert_allclose(spectra, song_windows[1], atol=1e-4 * np.abs(song_windows).max())
    other_windows = pipeline.song_spectra(store, 2)
    other = reader.read("spectra", int(store.songs["first_window"][2]))
    np.testing.assert_allclose(other, other_windows[0], atol=1e-4 * np.abs(other_windows).max())
    np.testing.assert_array_equal(reader.read("spectra", index), spectra)
    np.testing.assert_array_equal(reader.read("accomp_mag", index), accomp)


def test_two_source_run_evaluates_with_wiener(two_source_run, tiny_cache):
    import evaluate
    scores, _ = evaluate.evaluate_run(two_source_run, [str(tiny_cache)], ["museval"], 1, "mixture", 1)
    assert (two_source_run / "scores_museval_wiener1.json").exists()
    assert scores["museval"]["wiener_iterations"] == 1
    assert scores["museval"]["aggregate"]["vocals_SDR_median"] is not None


def test_remix_cli_reports_windows_per_second(store, tmp_path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, str(ROOT / "remix.py"), "--sources", str(store.path), "--batches", "2",
                          "--batch-size", "4", "--figure", str(tmp_path / "r.png")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "windows/s" in out.stdout and (tmp_path / "r.png").stat().st_size > 1000


def test_sdr_loss_trains_and_resumes(tiny_cache, store, tmp_path):
    import train
    run_dir = tmp_path / "sdr"
    common = ["--data", str(tiny_cache), "--online-remix", str(store.path), "--target", "masked2", "--loss", "sdr",
              "--norm", "time", "--scaler", "robust", "--run-dir", str(run_dir), "--base-filters", "2",
              "--batch-size", "2", "--steps-per-epoch", "1", "--verbose", "0", "--eager"]
    train.main(common + ["--epochs", "1"])
    assert (run_dir / "resume.keras").exists()
    config = json.loads((run_dir / "config.json").read_text())
    config["status"] = "running"                    # as a run killed after its first epoch leaves it
    (run_dir / "config.json").write_text(json.dumps(config))
    train.main(common + ["--epochs", "2", "--resume"])      # loads resume.keras, which names the SDR loss
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "complete" and config["results"]["completed_epochs"] == 2
    assert np.isfinite(config["results"]["best_val_loss"]) and np.isfinite(config["results"]["mixture_val_loss"])


def test_sdr_loss_is_minus_the_waveform_sdr(rng):
    import losses
    n_bins, frames = audio.N_BINS, audio.WINDOW_FRAMES
    wave = (0.1 * rng.standard_normal((2, audio.EXCERPT_SAMPLES))).astype(np.float32)
    spec = audio.excerpt_stft(wave)                                  # (2, bins, frames)
    mix = spec * 2                                                   # vocals = half of the mixture
    label_spectra = np.stack([mix.real, mix.imag, spec.real, spec.imag], axis=-1).astype(np.float32)
    loss = losses.get("sdr", "time", "robust", 1)
    import normalize
    stats = normalize.fit(np.abs(mix)[..., None], "time", "robust")
    perfect = normalize.transform(np.abs(spec)[..., None], stats)
    y_true = np.concatenate([perfect, label_spectra], axis=-1)
    assert y_true.shape == (2, n_bins, frames, 1 + losses.spectra_channels(1))
    assert float(np.max(loss.call(y_true, perfect))) < -40           # a perfect estimate: SDR > 40 dB
    mixture = normalize.transform(np.abs(mix)[..., None], stats)
    np.testing.assert_allclose(loss.call(y_true, mixture), 0.0, atol=0.05)   # twice the vocals: error = signal


def test_sdr_loss_inverse_stft_is_tensorflows_and_inverts_the_excerpt(rng):
    """losses.waveforms (keras.ops, so the SDR losses also train under JAX) = tf.signal.inverse_stft
    with its inverse window, the inverse the loss used before; away from the edges it returns the
    excerpt itself (tones: the Nyquist bin the windows drop holds nothing of them)."""
    import tensorflow as tf
    import losses
    t = np.arange(audio.EXCERPT_SAMPLES) / audio.SAMPLE_RATE
    wave = np.stack([0.1 * np.sin(2 * np.pi * f * t + p) for f, p in rng.uniform((50, 0), (4000, 6), (3, 2))])
    wave = wave.astype(np.float32)
    spec = audio.excerpt_stft(wave)[..., None]        # (3, bins, frames, 1 source)
    spec = np.concatenate([spec, 0.5 * spec], axis=-1)                   # two sources
    got = np.asarray(losses.waveforms(spec.real, spec.imag))
    assert got.shape == (3, 2, audio.EXCERPT_SAMPLES)
    window = tf.signal.inverse_stft_window_fn(
        audio.HOP, lambda n, dtype: tf.signal.hann_window(n, periodic=True, dtype=dtype))
    frames = np.concatenate([spec, np.zeros_like(spec[:, :1])], axis=1).transpose(0, 3, 2, 1)
    expected = tf.signal.inverse_stft(frames, audio.N_FFT, audio.HOP, audio.N_FFT, window_fn=window).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    inside = slice(audio.N_FFT, -audio.N_FFT)        # full overlap: the window's squares sum to their constant
    np.testing.assert_allclose(got[:, 0, inside], wave[:, inside], atol=1e-5)
    np.testing.assert_allclose(got[:, 1, inside], 0.5 * wave[:, inside], atol=1e-5)


def test_sdrmask_loss_adds_the_soft_masked_estimates(rng):
    import losses
    import normalize
    wave = (0.1 * rng.standard_normal((2, audio.EXCERPT_SAMPLES))).astype(np.float32)
    spec = audio.excerpt_stft(wave)                                  # vocals = accompaniment = half the mix
    mix = spec * 2
    label_spectra = np.stack([mix.real, mix.imag, spec.real, spec.imag, spec.real, spec.imag], axis=-1)
    stats = normalize.fit(np.abs(mix)[..., None], "time", "robust")
    half = normalize.transform(np.abs(spec)[..., None], stats)
    perfect = np.concatenate([half, half], axis=-1)
    y_true = np.concatenate([perfect, label_spectra.astype(np.float32)], axis=-1)
    plain, masked = losses.get("sdr", "time", "robust", 2), losses.get("sdrmask", "time", "robust", 2)
    assert float(np.max(masked.call(y_true, perfect))) < -40
    # both outputs twice too loud: the direct estimates are as far off as the truth is loud (SDR 0),
    # the mask V / (V + A) is still exact, so only the sdrmask loss counts half of it as perfect
    double = normalize.transform(2 * np.abs(spec)[..., None], stats)
    double = np.concatenate([double, double], axis=-1)
    np.testing.assert_allclose(plain.call(y_true, double), 0.0, atol=0.05)
    assert float(np.max(masked.call(y_true, double))) < -20
    with pytest.raises(ValueError, match="two-source"):
        losses.get("sdrmask", "time", "robust", 1)


def test_two_source_export_matches_keras(two_source_run):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    import export
    result = export.export(two_source_run, "onnx")
    windows = export.check_windows(3, seed=2)
    expected = separation.WindowModel.from_run(two_source_run).forward(windows)
    got = export.run_export(result["out"], "onnx", windows)
    assert got.shape == expected.shape == (3, *audio.WINDOW_SHAPE[:-1], 2)
    assert np.max(np.abs(got - expected)) <= 1e-4 * np.max(np.abs(expected))


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_wiener_filter_is_norberts(channels, iterations, rng):
    norbert = pytest.importorskip("norbert")
    import filtering
    x = (3 * (rng.standard_normal((60, 40, channels)) + 1j * rng.standard_normal((60, 40, channels)))).astype(np.complex64)
    v = (np.abs(x).mean(-1)[..., None, None] * rng.uniform(0, 1, (60, 40, 1, 2))).astype(np.float32)
    v = np.broadcast_to(v, (60, 40, channels, 2)).copy()
    expected = norbert.wiener(v, x.copy(), iterations)                     # frames first
    ours = filtering.wiener(v.transpose(1, 0, 2, 3).copy(), x.transpose(1, 0, 2).copy(), iterations)   # bins first
    np.testing.assert_allclose(ours.transpose(1, 0, 2, 3), expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("iterations", [1, 2])
def test_the_stereo_filter_on_threads_is_the_one_thread_filter(iterations, rng, monkeypatch):
    norbert = pytest.importorskip("norbert")
    import filtering
    x = (3 * (rng.standard_normal((61, 40, 2)) + 1j * rng.standard_normal((61, 40, 2)))).astype(np.complex64)
    v = (np.abs(x).mean(-1)[..., None, None] * rng.uniform(0, 1, (61, 40, 1, 2))).astype(np.float32)
    x[5, 3, 0] = 40                     # the loudest bin (norbert's scaling) in the first block only
    one_thread = filtering.wiener(v, x, iterations)
    monkeypatch.setattr(filtering, "MIN_THREADED_POINTS", 0)
    monkeypatch.setattr(filtering.os, "cpu_count", lambda: 3)
    assert [(b.start, b.stop) for b in filtering.bin_blocks(61, 40)] == [(0, 20), (20, 40), (40, 61)]
    threaded = filtering.wiener(v, x, iterations)
    np.testing.assert_array_equal(threaded, one_thread)
    expected = norbert.wiener(np.repeat(v, 2, axis=2).transpose(1, 0, 2, 3).copy(), x.transpose(1, 0, 2).copy(),
                              iterations).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(threaded, expected, atol=1e-5 * np.abs(expected).max())


def test_init_from_keeps_the_vocals_head_and_adds_an_accompaniment_head(tiny_run):
    import model
    import normalize
    import runs
    import train
    from export import check_windows
    old, config = runs.load_run(tiny_run)
    net = model.build_unet(config["args"]["base_filters"], config["args"]["arch"], "direct2")
    record = train.init_from(net, tiny_run)
    assert record["widened"] == ["output_conv"] and record["copied"] > 0 and not record["fresh"]
    windows = check_windows(2, seed=0)
    x = normalize.transform(windows, normalize.fit(windows, config["args"]["norm"], config["args"]["scaler"]))
    np.testing.assert_array_equal(np.asarray(net(x))[..., :1], np.asarray(old(x)))


def test_stereo_wiener_takes_one_spectrogram_for_both_channels(rng):
    import filtering
    x = (rng.standard_normal((30, 20, 2)) + 1j * rng.standard_normal((30, 20, 2))).astype(np.complex64)
    v = rng.uniform(0, 1, (30, 20, 1, 2)).astype(np.float32)
    shared = filtering.wiener(v, x, 1)
    per_channel = filtering.wiener(np.repeat(v, 2, axis=2), x, 1)
    assert shared.shape == (30, 20, 2, 2) and shared.dtype == np.complex64
    np.testing.assert_allclose(shared, per_channel, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_wiener_returns_the_sources_asked_for_unchanged(channels, iterations, rng):
    import filtering
    x = (rng.standard_normal((30, 20, channels)) + 1j * rng.standard_normal((30, 20, channels))).astype(np.complex64)
    v = rng.uniform(0, 1, (30, 20, channels, 3)).astype(np.float32)
    every = filtering.wiener(v, x, iterations)
    for sources in ([0], [2, 1]):
        np.testing.assert_allclose(filtering.wiener(v, x, iterations, sources=sources), every[..., sources],
                                   rtol=1e-6, atol=1e-6)


def test_the_default_post_filter_is_wiener_for_two_source_models_and_the_mask_for_vocals_only(two_source_run,
                                                                                               tiny_run):
    import separation
    from separation import DEFAULT_WIENER_ITERATIONS, Separator
    assert DEFAULT_WIENER_ITERATIONS == 1
    two = Separator.from_run(two_source_run, backend="keras")
    one = Separator.from_run(tiny_run, backend="keras")
    assert two.song_separator.wiener_iterations == DEFAULT_WIENER_ITERATIONS
    assert one.song_separator.wiener_iterations == 0
    assert Separator.from_run(two_source_run, backend="keras", wiener_iterations=0).song_separator.wiener_iterations == 0
    assert separation.default_wiener_iterations(None) == 0


def test_vocal_spectrum_takes_a_mask_per_channel(rng):
    mix_spec = (rng.standard_normal((33, 50, 2)) + 1j * rng.standard_normal((33, 50, 2))).astype(np.complex64)
    ratios = rng.uniform(0, 1, (2, 33, 50, 2)).astype(np.float32)
    per_channel = separation.vocal_spectrum(mix_spec, ratios, 0)
    for c in range(2):
        np.testing.assert_allclose(per_channel[..., c], separation.vocal_spectrum(mix_spec[..., c:c + 1], ratios[..., c], 0)[..., 0],
                                   atol=1e-6)
    # the same ratios on every channel are the (2, bins, T) form
    shared = np.repeat(ratios[..., :1], 2, axis=-1)
    for iterations in (0, 1):
        np.testing.assert_allclose(separation.vocal_spectrum(mix_spec, shared, iterations),
                                   separation.vocal_spectrum(mix_spec, ratios[..., 0], iterations), atol=1e-5)


@pytest.mark.parametrize("iterations", [0, 1])
def test_each_channel_is_heard_on_its_own(two_source_run, rng, iterations):
    left = (0.1 * rng.standard_normal(3 * 22050)).astype(np.float32)
    right = (0.3 * np.sin(np.arange(3 * 22050) * 0.05) + 0.05 * rng.standard_normal(3 * 22050)).astype(np.float32)
    song = np.stack([left, right], axis=1)
    each, mix, both = (separation.Separator.from_run(two_source_run, backend="keras", wiener_iterations=iterations,
                                                     channels=mode) for mode in ("each", "mix", "both"))
    stems = each.separate(song, 22050)
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], song, atol=1e-5)
    # swapping the input channels swaps the stems' channels
    np.testing.assert_allclose(each.separate(song[:, ::-1], 22050)["vocals"], stems["vocals"][:, ::-1], atol=1e-5)
    assert not np.allclose(stems["vocals"], mix.separate(song, 22050)["vocals"], atol=1e-4)
    averaged = both.separate(song, 22050)
    np.testing.assert_allclose(averaged["vocals"] + averaged["accompaniment"], song, atol=1e-5)
    assert not np.allclose(averaged["vocals"], stems["vocals"], atol=1e-4)
    if iterations == 0:     # a soft mask per channel: the left stem is the left channel separated alone
        np.testing.assert_allclose(stems["vocals"][:, 0], each.separate(left, 22050)["vocals"], atol=1e-5)
    # two equal channels, or a mono song, are their own mix
    twin = np.stack([left, left], axis=1)
    for other in (each, both):
        np.testing.assert_allclose(other.separate(twin, 22050)["vocals"], mix.separate(twin, 22050)["vocals"], atol=1e-5)
    np.testing.assert_allclose(each.separate(left, 22050)["vocals"], mix.separate(left, 22050)["vocals"], atol=1e-6)
