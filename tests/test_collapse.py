"""bench/collapse.py's measurements on arrays whose answers are known (no training)."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("collapse", ROOT / "bench" / "collapse.py")
collapse = importlib.util.module_from_spec(spec)
spec.loader.exec_module(collapse)


def test_describe_scores_the_predictions_that_need_no_learning():
    target = np.zeros((2, 4, 4, 1), np.float32)
    target[0, 0, 0, 0] = 1.0                      # one bin of vocal in a silent field
    mixture = np.ones_like(target)
    s = collapse.describe(mixture, target)
    assert s["near_zero"] == 31 / 32 and s["negative"] == 0.0
    assert s["zeros"] == (1 / 32, 1 / 32)         # MAE and MSE of predicting silence
    assert s["mixture"][0] == 31 / 32
    assert s["constant"][0] == s["zeros"][0]      # the per-window median is 0 here


def _curve(name, norm, scaler, loss, val_loss):
    steps = np.arange(1, len(val_loss) + 1) * 38
    return name, SimpleNamespace(norm=norm, scaler=scaler, loss=loss), {"steps": steps, "val_loss": np.array(val_loss)}


def test_plot_steps_draws_one_run_absolute_and_a_grid_relative_to_each_constant(tmp_path, monkeypatch):
    stats = {("frequency", "minmax"): {"constant": (0.0667, 0.02)}, ("time", "robust"): {"constant": (0.5, 6.0)}}
    drawn = []
    import matplotlib.axes
    real = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda ax, x, y, *a, **k: drawn.append(np.asarray(y)) or real(ax, x, y, *a, **k))
    one = [_curve("a", "frequency", "minmax", "mae", [0.07, 0.0535])]
    collapse.plot_steps(one, stats, tmp_path / "one.png")
    np.testing.assert_allclose(drawn[-1], [0.07, 0.0535])
    grid = one + [_curve("b", "time", "robust", "mse", [6.0, 3.0])]
    collapse.plot_steps(grid, stats, tmp_path / "grid.png")
    np.testing.assert_allclose(drawn[-2], [0.07 / 0.0667, 0.0535 / 0.0667])
    np.testing.assert_allclose(drawn[-1], [1.0, 0.5])          # the MSE row against its MSE constant
    assert (tmp_path / "one.png").stat().st_size > 0 and (tmp_path / "grid.png").stat().st_size > 0
