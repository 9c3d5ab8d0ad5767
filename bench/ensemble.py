"""Output ensembling: one run whose model is the mean of several runs' models.

    python bench/ensemble.py RUN_A RUN_B [...] --out results/runs-select/ens-NAME
    python bench/ablation.py --runs results/runs-select/ens-NAME --sets valid test
    python export.py results/runs-select/ens-NAME          # one ONNX graph, as for any run

Unlike a weight soup (bench/soup.py: one model, the members' mean weights), the ensemble keeps
every member and averages their source magnitudes: it costs one model pass per member, and works
for members of any size or architecture, trained apart. The members must share the scaler
(--norm, --scaler) and the output (--target): the mean is taken before the shared inverse scaling.

The ensemble is a complete run folder: the first member's config.json with an "ensemble" entry
(each member's name, folder, base filters, architecture and weights digest), and best.weights.h5
holding every member's weights in one model (model.build_ensemble), which runs.load_run rebuilds.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import runs  # noqa: E402

SHARED = ("norm", "scaler", "target")      # what the mean of the members' outputs needs in common


def ensemble(members: list[Path], out: Path) -> Path:
    """Write OUT/ (config.json, best.weights.h5): the members' mean as one model.

    Args:
        members: complete run folders sharing the scaler and target.
        out: the new run folder (must not exist).
    """
    import model as model_lib
    import separation
    for run in members:
        if not runs.is_complete_run(run):
            raise SystemExit(f"ensemble: {run} is not a complete run (config.json with best.weights.h5)")
    configs = [runs.derived_config(run) for run in members]
    for run, config in zip(members, configs):
        if "ensemble" in config:
            raise SystemExit(f"ensemble: {run} is an ensemble itself; name its members instead")
    for run, config in zip(members[1:], configs[1:]):
        differs = [k for k in SHARED if config["args"][k] != configs[0]["args"][k]]
        if differs:
            raise SystemExit(f"ensemble: {run} differs from {members[0]} in {', '.join(differs)}: the members' "
                             "mean needs one scaler and one output stage")
    nets = [runs.load_run(run)[0] for run in members]
    net = model_lib.build_ensemble([(c["args"]["base_filters"], c["args"]["arch"]) for c in configs],
                                   configs[0]["args"]["target"])
    for i, member in enumerate(nets):
        net.get_layer(model_lib.ensemble_member_name(i, member)).set_weights(member.get_weights())
    with runs.derived_run(out, "ensemble") as partial:
        net.save_weights(partial / "best.weights.h5")
        config = dict(configs[0])
        config["name"] = out.name
        config["ensemble"] = {"members": [
            {"name": c.get("name"), "run": str(run), "base_filters": c["args"]["base_filters"],
             "arch": c["args"]["arch"], "weights_sha1": separation.weights_digest(run)}
            for run, c in zip(members, configs)]}
        runs.write_json(partial / "config.json", config)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("members", nargs="+", type=Path, help="complete run folders (two or more)")
    p.add_argument("--out", type=Path, required=True, help="the ensemble's run folder (new)")
    args = p.parse_args()
    if len(args.members) < 2:
        p.error("an ensemble needs two or more members")
    out = ensemble(args.members, args.out)
    print(f"ensemble: mean of {len(args.members)} runs' models -> {out}")


if __name__ == "__main__":
    main()
