"""bench/curves.py: validation curves of several runs on one figure, with each run's best epoch."""
import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("curves", ROOT / "bench" / "curves.py")
curves = importlib.util.module_from_spec(spec)
spec.loader.exec_module(curves)


def test_best_epoch_and_mean_per_run(tmp_path):
    for name, losses in (("a", [-1.0, -3.0, -2.0]), ("b", [-0.5])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.csv").write_text(
            "epoch,loss,val_loss\n" + "".join(f"{i},0.0,{v}\n" for i, v in enumerate(losses)))
    summary = curves.plot([tmp_path / "a", tmp_path / "b"], tmp_path / "fig.png", "t", (-4, 0))
    assert summary == [("a", 2, -3.0, -2.0, 3), ("b", 1, -0.5, -0.5, 1)]
    assert (tmp_path / "fig.png").stat().st_size > 1000
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "curves.py"), str(tmp_path / "missing")],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "missing/history.csv: no such file" in out.stderr
    with pytest.raises(SystemExit, match="no such file"):
        curves.read_history(tmp_path)
