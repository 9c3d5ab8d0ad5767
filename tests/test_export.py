"""export.py: each format reproduces the Keras graph; separation runs the export without TensorFlow."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import audio
import export
import separation
from conftest import ROOT, SHARED_DATA, encode, needs_shared_data

# An exported graph may differ from the Keras one by float32 reordering only: 1e-4 of the largest output.
TOLERANCE = 1e-4
RUNTIMES = {"onnx": "onnxruntime", "tflite": "ai_edge_litert", "savedmodel": "tensorflow"}


@pytest.fixture(scope="module")
def exported_run(tiny_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(tiny_run, run_dir)
    return run_dir


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_each_format_matches_the_keras_graph(exported_run, fmt):
    pytest.importorskip(RUNTIMES[fmt])
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
    result = export.export(exported_run, fmt)
    windows = np.concatenate([export.check_windows(3, seed=9), export.check_windows(2, seed=4)])  # batch 5: open
    expected = separation.WindowModel.from_run(exported_run).forward(windows)
    got = export.run_export(result["out"], fmt, windows)
    assert got.shape == expected.shape
    difference = np.max(np.abs(got - expected))
    assert difference <= TOLERANCE * np.max(np.abs(expected)), (fmt, difference)
    record = json.loads((exported_run / separation.EXPORT_RECORD).read_text())[result["out"].name]
    assert record["weights_sha1"] == separation.weights_digest(exported_run)
    assert not list(exported_run.glob("*.partial"))


def auto_backend() -> str:
    """The backend --backend auto picks for a run with every export current (separation.auto_order)."""
    return next(b for b in separation.auto_order() if separation._importable(separation.RUNTIMES[b]))


def test_auto_prefers_openvino_only_where_it_runs_bfloat16(monkeypatch):
    import hardware
    monkeypatch.delenv(separation.OPENVINO_PRECISION_VARIABLE, raising=False)
    for flags, first in ((["avx2", "fma"], "onnx"), (["avx2", "avx512f"], "onnx"),
                         (["avx2", "avx512f", "amx_bf16"], "openvino"), (["avx512f", "avx512_bf16"], "openvino")):
        monkeypatch.setattr(hardware, "cpu_info", lambda flags=flags: {"model": "x", "cores": 2, "flags": flags})
        assert separation.auto_order()[0] == first, flags
        assert sorted(separation.auto_order()) == sorted(separation.EXPORT_FILES), flags   # every export backend
    monkeypatch.setenv(separation.OPENVINO_PRECISION_VARIABLE, "f32")     # bfloat16 hardware, float32 asked for
    assert separation.auto_order()[0] == "onnx"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"model": "x", "cores": 2, "flags": ["avx2"]})
    monkeypatch.setenv(separation.OPENVINO_PRECISION_VARIABLE, "bf16")
    assert separation.auto_order()[0] == "openvino"


def test_auto_backend_uses_an_export_only_while_it_matches_the_weights(exported_run, monkeypatch):
    pytest.importorskip("onnxruntime")
    if not (exported_run / "model.onnx").exists():
        export.export(exported_run, "onnx")
    assert separation.load_window_model(exported_run).backend == auto_backend()
    # the musician's light install (no OpenVINO): onnxruntime
    importable = separation._importable
    with monkeypatch.context() as patch:
        patch.setattr(separation, "_importable", lambda module: module != "openvino" and importable(module))
        assert separation.load_window_model(exported_run).backend == "onnx"
    record_path = exported_run / separation.EXPORT_RECORD
    records = json.loads(record_path.read_text())
    records["model.onnx"]["weights_sha1"] = "0" * 16                       # as if retrained since
    record_path.write_text(json.dumps(records))
    assert separation.load_window_model(exported_run).backend not in ("onnx", "openvino")
    with pytest.raises(FileNotFoundError, match="export.py"):
        separation.load_window_model(exported_run, "onnx")
    export.export(exported_run, "onnx")


# bfloat16 keeps 8 significant bits: the output may move by a few tenths of a percent per layer
BF16_TOLERANCE = 3e-2


@pytest.mark.parametrize("precision, tolerance", [("f32", TOLERANCE), ("bf16", BF16_TOLERANCE)])
def test_openvino_runs_the_onnx_export_like_the_keras_graph(exported_run, monkeypatch, precision, tolerance):
    pytest.importorskip("openvino")
    if not (exported_run / "model.onnx").exists():
        export.export(exported_run, "onnx")
    monkeypatch.setenv(separation.OPENVINO_PRECISION_VARIABLE, precision)
    window_model = separation.load_window_model(exported_run, "openvino")
    assert window_model.precision == precision
    windows = np.concatenate([export.check_windows(3, seed=9), export.check_windows(2, seed=4)])
    expected = separation.WindowModel.from_run(exported_run).forward(windows)
    got = np.concatenate([window_model.forward(windows[:3]), window_model.forward(windows[3:])])  # batch sizes change
    assert got.shape == expected.shape
    difference = np.max(np.abs(got - expected))
    assert difference <= tolerance * np.max(np.abs(expected)), (precision, difference)


def test_openvino_calls_from_several_threads_get_their_own_results(exported_run):
    pytest.importorskip("openvino")
    import threading
    if not (exported_run / "model.onnx").exists():
        export.export(exported_run, "onnx")
    window_model = separation.load_window_model(exported_run, "openvino")
    batches = [export.check_windows(2, seed=seed) for seed in range(4)]
    expected = [window_model.forward(b) for b in batches]
    got = [None] * len(batches)

    def call(i: int) -> None:
        for _ in range(5):
            got[i] = window_model.forward(batches[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_openvino_precision_is_checked(exported_run, monkeypatch):
    pytest.importorskip("openvino")
    if not (exported_run / "model.onnx").exists():
        export.export(exported_run, "onnx")
    monkeypatch.setenv(separation.OPENVINO_PRECISION_VARIABLE, "fp8")
    with pytest.raises(ValueError, match=separation.OPENVINO_PRECISION_VARIABLE):
        separation.load_window_model(exported_run, "openvino")


def real_song_stems(backends: tuple[str, ...], tmp_path) -> list[dict[str, np.ndarray]]:
    """The shipped model's stems of the first MUSDB18-7 test song, one dict per backend."""
    pretrained = ROOT / "pretrained"
    if separation.current_export(pretrained, "onnx") is None:
        pytest.skip("pretrained/model.onnx missing or stale: python export.py pretrained")
    song = sorted((SHARED_DATA / "musdb18-7" / "test").glob("*.stem.mp4"))[0]
    stems = []
    for backend in backends:
        paths = separation.Separator.from_run(pretrained, backend=backend).separate_to_file(song, tmp_path / backend)
        stems.append({k: sf.read(str(p))[0] for k, p in paths.items()})
        assert stems[-1]["vocals"].shape == stems[0]["vocals"].shape
    return stems


@needs_shared_data("musdb18-7")
def test_openvino_and_onnxruntime_give_the_same_stems_on_a_real_song(tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    openvino, onnx = real_song_stems(("openvino", "onnx"), tmp_path)
    for stem in separation.STEMS:
        a, b = openvino[stem], onnx[stem]
        # stated tolerance: the stems agree to 30 dB signal-to-difference (bfloat16 where the CPU has
        # it; validation SDR moved by under 0.01 dB, README)
        snr = 10 * np.log10(np.sum(b ** 2) / np.sum((a - b) ** 2))
        assert snr > 30, (stem, snr)


@needs_shared_data("musdb18-7")
def test_onnx_and_keras_give_the_same_stems_on_a_real_song(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx, keras = real_song_stems(("onnx", "keras"), tmp_path)
    for stem in separation.STEMS:
        a, b = onnx[stem], keras[stem]
        # stated tolerance: 1e-4 absolute on samples in [-1, 1] (float32 reordering in the network)
        assert np.max(np.abs(a - b)) < 1e-4, (stem, np.max(np.abs(a - b)))


def test_separation_runs_where_tensorflow_cannot_be_imported(exported_run, tmp_path):
    pytest.importorskip("onnxruntime")
    if not (exported_run / "model.onnx").exists():
        export.export(exported_run, "onnx")
    rng = np.random.default_rng(0)
    song = tmp_path / "song.wav"
    sf.write(song, (0.1 * rng.standard_normal((44100 * 3, 2))).astype(np.float32), 44100)
    songs = [song]
    if audio.has_pyav():        # and an AAC file with no ffmpeg program on PATH (the musician's install)
        songs.append(encode(song, tmp_path / "song2.m4a", "-c:a", "aac"))
    # A process in which `import tensorflow` (and keras) fails, as on a machine without them.
    probe = ("import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n"
             f"sys.path.insert(0, {str(ROOT)!r})\nimport separate\n"
             f"separate.main([*{[str(s) for s in songs]!r}, '--run', {str(exported_run)!r}, "
             f"'--out', {str(tmp_path / 'out')!r}])\n"
             "print('tensorflow loaded:', sys.modules.get('tensorflow') is not None)")
    (tmp_path / "empty-bin").mkdir()
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PATH": str(tmp_path / "empty-bin")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "tensorflow loaded: False" in out.stdout and f"({auto_backend()})" in out.stderr
    for path in songs:
        vocals, sr = sf.read(tmp_path / "out" / path.stem / "vocals.wav")
        assert sr == 44100 and abs(len(vocals) - 44100 * 3) < 2048 and vocals.shape[1] == 2
