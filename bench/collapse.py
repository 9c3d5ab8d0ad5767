"""Why the paper's Min/Max rows collapse towards silence: the scaled targets, and trivial predictions.

    python bench/collapse.py --data data/musdb18-7                 # -> results/collapse.md, results/collapse.png
    python bench/collapse.py --data data/musdb18-7 --runs results/runs/frequency-minmax-mae-diag ...

For every Table I normalization (axis x scaler, plus the released code's `max`) on the training
windows: how the vocal target looks once scaled with the *mixture's* statistics (share of negative
and near-zero values, median, spread), and the training loss (MAE and MSE) of three predictions
that need no learning: all zeros, the scaled mixture itself, and the per-window best constant.
A loss surface on which "predict a constant" is already near the minimum is one where short
training drifts to a constant, and a constant in the scaled domain is, after the inverse, the
mixture's per-row (per-bin) floor: near-silence that still leaks every band's minimum. With
--runs, trained runs' predictions are scored the same way, with where their training gradient
comes from (the share from near-zero targets, and the weight-gradient norm: gradient_facts), and
the figure shows a scaled target beside each run's prediction.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))     # appended: bench/train.py must not shadow train.py

CONFIGS = [("frequency", "minmax"), ("time", "minmax"), ("frequency", "robust"), ("time", "robust"),
           ("frequency", "max"), ("time", "max")]
NEAR_ZERO = 0.01


def scaled_pairs(store, axis: str, scaler: str, indices: np.ndarray):
    import normalize
    mix = np.stack([store.read("mix_mag", int(i)) for i in indices])
    vocal = np.stack([store.read("vocal_mag", int(i)) for i in indices])
    x, y = normalize.normalize_pair(mix, vocal, axis, scaler)
    return x, y


def loss(prediction: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    err = prediction - target
    return float(np.mean(np.abs(err))), float(np.mean(err ** 2))


def describe(x: np.ndarray, y: np.ndarray) -> dict:
    """Statistics of the scaled targets and the losses of predictions that need no learning."""
    per_window_median = np.median(y.reshape(len(y), -1), axis=1)[:, None, None, None]
    per_window_mean = y.reshape(len(y), -1).mean(axis=1)[:, None, None, None]
    return {
        "negative": float(np.mean(y < 0)), "near_zero": float(np.mean(np.abs(y) < NEAR_ZERO)),
        "median": float(np.median(y)), "p95": float(np.percentile(y, 95)), "x_median": float(np.median(x)),
        "zeros": loss(np.zeros_like(y), y), "mixture": loss(x, y),
        "constant": (loss(per_window_median, y)[0], loss(per_window_mean, y)[1]),
    }


def gradient_facts(net, x: np.ndarray, y: np.ndarray, loss_name: str, batch: int = 16) -> dict:
    """Where the training gradient comes from at a run's weights, on the sampled windows.

    near_zero_share: the share of the loss gradient's mass (L1, w.r.t. the network's output) from
    bins whose scaled target is within NEAR_ZERO of 0; push_down: the share of those bins' gradients
    that lower the prediction (prediction above target); weight_grad_norm: global L2 norm of the
    gradient w.r.t. all weights (mean over batches): small = a flat spot that more steps leave.
    """
    import tensorflow as tf
    mass = mass_near = down = n_near = 0.0
    norms = []
    for k in range(0, len(x), batch):
        xb, yb = tf.constant(x[k:k + batch]), tf.constant(y[k:k + batch])
        with tf.GradientTape(persistent=True) as tape:
            y_hat = tf.cast(net(xb, training=False), tf.float32)
            tape.watch(y_hat)
            err = y_hat - yb[..., :y_hat.shape[-1]]
            loss = tf.reduce_mean(tf.abs(err)) if loss_name == "mae" else tf.reduce_mean(tf.square(err))
        g_out = tape.gradient(loss, y_hat).numpy()
        g_weights = tape.gradient(loss, net.trainable_variables)
        del tape
        norms.append(float(tf.linalg.global_norm([g for g in g_weights if g is not None])))
        near = np.abs(yb.numpy()[..., :g_out.shape[-1]]) < NEAR_ZERO
        mass += np.abs(g_out).sum()
        mass_near += np.abs(g_out[near]).sum()
        down += np.sum(g_out[near] > 0)
        n_near += near.sum()
    return {"near_zero_share": mass_near / mass if mass else float("nan"),
            "push_down": down / n_near if n_near else float("nan"), "weight_grad_norm": float(np.mean(norms))}


def run_facts(run_dir: Path) -> dict:
    """What sets a run apart (size, length, learning rate, recipe) and its scores, from its own files:
    config.json, history.csv and evaluate.py's scores_<protocol>.json (absent: not scored yet)."""
    import json
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    args, steps = config["args"], config["data"]["steps_per_epoch"]
    history = np.genfromtxt(run_dir / "history.csv", delimiter=",", names=True)
    epochs = np.atleast_1d(history["epoch"]) + 1
    facts = {"base": args["base_filters"], "epochs": args["epochs"], "lr": args["lr"],
             "steps": epochs * steps, "val_loss": np.atleast_1d(history["val_loss"]),
             "mix": "/".join(f"{m:g}" for m in args["mix"]) if isinstance(args["mix"], list) else str(args["mix"]),
             "target": args["target"], "best_val_loss": float(np.min(np.atleast_1d(history["val_loss"])))}
    for protocol in ("museval", "paper"):
        path = run_dir / f"scores_{protocol}.json"
        if path.exists():
            aggregate = json.loads(path.read_text())["aggregate"]
            keys = ("vocals_SDR_median", "vocals_SIR_median", "vocals_SI-SDR_median") if protocol == "museval" \
                else ("SDR", "SIR", "SAR")
            facts[protocol] = " / ".join("-" if aggregate.get(k) is None else f"{aggregate[k]:.1f}" for k in keys)
    return facts


def plot_steps(curves: list, stats: dict, path: Path) -> None:
    """Validation loss against optimizer steps for each run, with the loss of each window's best
    constant (of the runs' normalization) as the floor a collapsed run sits on. Runs of different
    normalizations or losses (a whole grid) have losses on different scales: then each curve is drawn
    relative to its own best constant, so 1 is the plateau for every row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = {(st.norm, st.scaler, st.loss) for _, st, _ in curves}
    relative = len(kinds) > 1

    def constant(st) -> float | None:
        if (st.norm, st.scaler) not in stats or st.loss not in ("mae", "mse"):
            return None
        return stats[(st.norm, st.scaler)]["constant"][0 if st.loss == "mae" else 1]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    lowest = np.inf
    for name, settings, facts in curves:
        scale = constant(settings) if relative else 1.0
        if scale is None:
            continue
        values = facts["val_loss"] / scale
        lowest = min(lowest, float(np.min(values)))
        ax.plot(facts["steps"], values, marker=".", label=name)
    if relative:
        ax.axhline(1.0, color="k", ls="--", lw=1, label="best constant per window (training windows)")
        ax.set_ylabel("validation loss / loss of the best constant")
        top = 1.6
    else:
        for (norm, scaler) in sorted({(st.norm, st.scaler) for _, st, f in curves if st.loss == "mae"}):
            if (norm, scaler) in stats:
                ax.axhline(stats[(norm, scaler)]["constant"][0], color="k", ls="--", lw=1,
                           label=f"best constant per window ({norm} / {scaler}, training windows)")
        ax.set_ylabel("validation loss")
        top = 0.12
    ax.set_xscale("log")
    ax.set_xlabel("optimizer steps")
    ax.set_ylim(lowest * 0.95, min(ax.get_ylim()[1], top))       # a diverged first epoch would flatten the rest
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["data/musdb18-7"], help="caches (their train split is read)")
    p.add_argument("--windows", type=int, default=256, help="training windows sampled")
    p.add_argument("--runs", nargs="*", default=[], help="trained runs to score on the same windows")
    p.add_argument("--out", default="results/collapse", help="OUT.md and OUT.png are written")
    args = p.parse_args()
    from common import print_machine
    print_machine()
    from cache import WindowStore, resolve_caches
    store = WindowStore(resolve_caches(args.data, "train"))
    rng = np.random.default_rng(0)
    indices = np.sort(rng.choice(len(store), min(args.windows, len(store)), replace=False))
    lines = [f"# The scaled targets of Table I's normalizations ({len(indices)} training windows of "
             f"{', '.join(args.data)})", "",
             "Regenerate with `python bench/collapse.py " + " ".join(["--data", *args.data] +
                                                                 (["--runs", *args.runs] if args.runs else [])) + "`.",
             "Targets = vocal magnitude scaled with the mixture window's statistics (what the network "
             "regresses). Losses of predictions that need no learning: all zeros, the scaled mixture, the "
             "window's best constant (its median for MAE, mean for MSE).", "",
             "| axis | scaler | targets < 0 | abs(target) < 0.01 | median target | 95th pct | MAE zeros | MAE mixture | "
             "MAE constant | MSE zeros | MSE mixture | MSE constant |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    stats = {}
    for axis, scaler in CONFIGS:
        x, y = scaled_pairs(store, axis, scaler, indices)
        s = stats[(axis, scaler)] = describe(x, y)
        lines.append(f"| {axis} | {scaler} | {s['negative']:.1%} | {s['near_zero']:.1%} | {s['median']:.3g} | "
                     f"{s['p95']:.3g} | {s['zeros'][0]:.4g} | {s['mixture'][0]:.4g} | {s['constant'][0]:.4g} | "
                     f"{s['zeros'][1]:.4g} | {s['mixture'][1]:.4g} | {s['constant'][1]:.4g} |")
        print(lines[-1], flush=True)
    panels, curves = [], []
    if args.runs:
        import runs as runs_lib
        from separation import WindowModel
        lines += ["", "Trained runs on the same windows (their own normalization; loss in the scaled domain, "
                  "and the share of predicted vocal magnitude that is the mixture's floor):", "",
                  "| run | base | epochs | lr | mix | target | best val loss | MAE | MSE | MAE of its best constant | "
                  "predicted vocal / mixture energy | gradient from near-zero targets | of it pushing down | "
                  "weight-gradient norm | museval SDR / SIR / SI-SDR | paper SDR / SIR / SAR |",
                  "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for run_dir in args.runs:
            s = runs_lib.settings(run_dir)
            x, y = scaled_pairs(store, s.norm, s.scaler, indices)
            window_model = WindowModel.from_run(run_dir)
            y_hat = np.concatenate([window_model.model(x[k:k + 16], training=False).numpy()
                                    for k in range(0, len(x), 16)])
            mix = np.stack([store.read("mix_mag", int(i)) for i in indices])
            vocal_hat = window_model.vocal_mag(mix)
            ratio = float(np.sum(vocal_hat ** 2) / np.sum(mix ** 2))
            mae, mse = loss(y_hat, y)
            f = run_facts(run_dir)
            curves.append((Path(run_dir).name, s, f))
            g = gradient_facts(window_model.model, x, y, s.loss if s.loss in ("mae", "mse") else "mae")
            lines.append(f"| {Path(run_dir).name} | {f['base']} | {f['epochs']} | {f['lr']:g} | {f['mix']} | "
                         f"{f['target']} | {f['best_val_loss']:.4g} | {mae:.4g} | {mse:.4g} | "
                         f"{stats.get((s.norm, s.scaler), {}).get('constant', (float('nan'),))[0]:.4g} | {ratio:.3f} | "
                         f"{g['near_zero_share']:.1%} | {g['push_down']:.1%} | {g['weight_grad_norm']:.3g} | "
                         f"{f.get('museval', 'not scored')} | {f.get('paper', 'not scored')} |")
            print(lines[-1], flush=True)
            k = int(np.argmax(np.abs(y).reshape(len(y), -1).sum(axis=1)))
            panels.append((Path(run_dir).name, y[k, ..., 0], y_hat[k, ..., 0]))
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    if panels:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.2 * len(panels)), squeeze=False)
        for row, (name, target, prediction) in enumerate(panels):
            vmin, vmax = np.percentile(target, [1, 99])
            for col, (title, image) in enumerate((("scaled target", target), ("prediction", prediction))):
                im = axes[row, col].imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax)
                axes[row, col].set_title(f"{name}: {title}", fontsize=9)
            fig.colorbar(im, ax=axes[row, :].tolist(), shrink=0.8)
        fig.savefig(out.with_suffix(".png"), dpi=70)
        plt.close(fig)
        plot_steps(curves, stats, out.with_name(out.name + "_steps.png"))
    print(f"collapse: -> {out.with_suffix('.md')}" + (f", {out.with_suffix('.png')}, {out.name}_steps.png" if panels else ""))


if __name__ == "__main__":
    main()
