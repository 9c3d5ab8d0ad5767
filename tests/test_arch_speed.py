"""bench/arch_speed.py: the model's time per window in onnxruntime, per architecture and for trained runs."""
import argparse
import importlib.util
import shutil
import sys

import pytest

from conftest import ROOT

sys.path.append(str(ROOT / "bench"))    # its helper module (common.py) sits beside it; appended: bench/train.py must not shadow train.py
spec = importlib.util.spec_from_file_location("arch_speed", ROOT / "bench" / "arch_speed.py")
arch_speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(arch_speed)


def test_arch_names_are_checked():
    assert arch_speed.parse_arch("jansson:8") == ("jansson", 8)
    for bad in ("jansson", "unet:8", "paper:0", "paper:x"):
        with pytest.raises(argparse.ArgumentTypeError):
            arch_speed.parse_arch(bad)


def test_times_random_unets_and_exported_runs(tiny_run, tmp_path, capsys):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    import export
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)                  # the export is written into the run: not into the shared fixture
    export.export(run, "onnx")
    arch_speed.main(["--archs", "paper:2", "jansson:2", "--runs", str(run), "--batch", "2", "--calls", "1",
                     "--repeats", "1"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("arch_speed:")]
    assert len(lines) == 4, lines                   # three models and the summary
    assert "paper:2 (network only" in lines[0] and "jansson:2 (network only" in lines[1]
    assert str(run) in lines[2] and "whole exported graph, paper:2" in lines[2]
    times = [float(line.split(" ms per window")[0].rsplit(" ", 1)[1]) for line in lines[:3]]
    assert all(t > 0 for t in times)
    assert "(1.0x)" in lines[3]                     # relative to the fastest


def test_a_run_without_its_export_is_named(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "model.onnx").unlink(missing_ok=True)
    with pytest.raises(SystemExit, match=f"no model.onnx in {run}: python export.py RUN"):
        arch_speed.main(["--archs", "--runs", str(run)])
