"""Train on a lent GPU machine that has no TensorFlow and a 64 MiB carry limit, then score here.

    python bench/gpu.py bundle --musdb-root ../shared/data/musdb18-7     # here: gpu/ + .whl/ to carry
    bash bench/gpu_session.sh                                             # there (the device tool)
    python bench/gpu.py bundle --musdb-root ../shared/data/musdb18-7 --mir1k-root ../shared/data/mir-1k/Wavfile
    bash bench/gpu_quality_session.sh                                     # there: the shipped models' recipe
    python bench/gpu.py unpack /work/.device/.../files --run-dir results/runs/NAME   # here, then evaluate.py

`bundle` writes the MUSDB18 songs as a `data_prep.py --folder-root` collection of 11025 Hz mono
stems (`data_prep.py --export-folder`: the mixture is the stem file's own AAC mix as decoded here),
with `--mir1k-root` also the MIR-1K training clips, written as Ogg Vorbis (`--codec`; the checkout
alone is 35 MB of the 64 MiB the device tool carries, and FLAC no longer fits beside it; Vorbis
keeps ~30 dB SNR, so the caches built there hold our windows up to that coding noise; `--codec flac`:
up to 16-bit rounding), and downloads the wheels Keras needs there (keras, namex, optree; soundfile
and cffi to read the stems).
`pack` (there) stores a run's best weights as float16 chunks under the tool's per-file limit, with
config.json, history.csv and the logs; `unpack` (here) rebuilds RUN/best.weights.h5 from them, so
evaluate.py scores the run like any other (float16 weights: a relative rounding of 5e-4).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK_BYTES = 15 * 2 ** 20          # the device tool returns files of at most 16 MiB
RUN_FILES = ("config.json", "history.csv", "training_curves.png")
# What Keras 3 and data_prep need there beyond the GPU image (KINDS.md lists what it has).
# soxr: data_prep.py --speed's copies (bench/gpu_quality_session.sh) resample there.
WHEELS = ("keras", "namex", "optree", "soundfile", "cffi", "pycparser", "soxr")
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                   "manylinux2014_x86_64", "manylinux1_x86_64")


CARRY_LIMIT = 64 * 2 ** 20           # the device tool's limit on the checkout and carried paths together
def bundle(musdb_root: Path, out: Path, wheels: Path, splits: tuple[str, ...], mir1k_root: Path | None = None,
           mir1k_out: Path | None = None, codec: str = "vorbis") -> None:
    """MUSDB18 songs as 11025 Hz stem folders under out/{split}/<song>/ (data_prep.py --export-folder),
    the MIR-1K training clips under mir1k_out/train/ when mir1k_root is given (vocals and accompaniment
    only: their sum is the mixture), as Ogg Vorbis unless codec is "flac" (data_prep.py --export-format), and the wheels."""
    import importlib.metadata as md

    import keras
    export = ["--export-format", codec]
    subprocess.run([sys.executable, str(ROOT / "data_prep.py"), "--musdb-root", str(musdb_root), "--splits", *splits,
                    "--export-folder", str(out), *export], check=True)
    if mir1k_root is not None:
        subprocess.run([sys.executable, str(ROOT / "data_prep.py"), "--mir1k-root", str(mir1k_root), "--splits", "train",
                        "--export-folder", str(mir1k_out), *export], check=True)
    pins = {"keras": keras.__version__}
    for name in WHEELS:
        pins.setdefault(name, md.version(name))
    wheels.mkdir(exist_ok=True)
    platform_args = [a for p in WHEEL_PLATFORMS for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platform_args, "-d", str(wheels),
                    *[f"{n}=={v}" for n, v in pins.items()]], check=True)
    folders = [out, wheels] + ([mir1k_out] if mir1k_root is not None else [])
    size = sum(p.stat().st_size for d in folders for p in d.rglob("*") if p.is_file())
    print(f"bundle: wheels {', '.join(f'{n} {v}' for n, v in pins.items())} -> {wheels}; "
          f"{size / 2 ** 20:.1f} MiB to carry" + ("" if size < CARRY_LIMIT else
          f", OVER the device tool's {CARRY_LIMIT / 2 ** 20:.0f} MiB with the checkout: carry fewer splits"))


def pack(run_dir: Path, out: Path, logs: list[Path]) -> None:
    """A run's best weights as float16 .npy chunks + run.tar.gz (config, history, curves, logs)."""
    import numpy as np

    import runs
    net, _ = runs.load_run(run_dir)
    flat = np.concatenate([np.asarray(w, np.float32).ravel() for w in net.get_weights()]).astype(np.float16)
    if not np.all(np.isfinite(flat)):
        raise SystemExit(f"pack: {run_dir} has weights beyond float16's range; pack them as float32")
    out.mkdir(parents=True, exist_ok=True)
    per_chunk = CHUNK_BYTES // 2
    for i, start in enumerate(range(0, flat.size, per_chunk)):
        np.save(out / f"weights-{i:02d}.npy", flat[start:start + per_chunk])
    with tarfile.open(out / "run.tar.gz", "w:gz") as tar:
        for name in RUN_FILES:
            if (run_dir / name).exists():
                tar.add(run_dir / name, arcname=name)
        for log in logs:
            if log.exists():
                tar.add(log, arcname=log.name)
    print(f"pack: {flat.size:,} weights of {run_dir.name} -> {out} ({flat.nbytes / 2 ** 20:.1f} MiB float16)")


def unpack(files: Path, run_dir: Path) -> None:
    """Rebuild RUN/best.weights.h5 (and config, history, logs) from pack's output."""
    import numpy as np

    import runs
    run_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(files / "run.tar.gz") as tar:
        tar.extractall(run_dir, filter="data")
    net, config = runs.build_run_model(run_dir)
    flat = np.concatenate([np.load(p) for p in sorted(files.glob("weights-*.npy"))]).astype(np.float32)
    shapes = [w.shape for w in net.get_weights()]
    sizes = [int(np.prod(sh)) for sh in shapes]
    if sum(sizes) != flat.size:
        raise SystemExit(f"unpack: {files} holds {flat.size:,} weights; {run_dir}/config.json's model has {sum(sizes):,}")
    offsets = np.cumsum([0, *sizes])
    net.set_weights([flat[a:b].reshape(sh) for a, b, sh in zip(offsets[:-1], offsets[1:], shapes)])
    net.save_weights(run_dir / "best.weights.h5")
    config.setdefault("notes", []).append("best.weights.h5 rebuilt from float16 weights by bench/gpu.py unpack")
    runs.write_json(run_dir / "config.json", config)
    print(f"unpack: {flat.size:,} weights -> {run_dir / 'best.weights.h5'}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="here: FLAC songs + wheels to carry")
    b.add_argument("--musdb-root", type=Path, required=True)
    b.add_argument("--out", type=Path, default=ROOT / "gpu" / "musdb18-7")
    b.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    b.add_argument("--splits", nargs="+", default=["train", "valid"], choices=("train", "valid", "test"))
    b.add_argument("--mir1k-root", type=Path, default=None,
                   help="also the MIR-1K training clips (for bench/gpu_quality_session.sh; e.g. ../shared/data/mir-1k/Wavfile)")
    b.add_argument("--mir1k-out", type=Path, default=ROOT / "gpu" / "mir1k")
    b.add_argument("--codec", choices=("vorbis", "flac"), default="vorbis",
                   help="the carried stems (data_prep.py --export-format): Ogg Vorbis (~30 dB SNR, a third of FLAC's "
                        "size) or 16-bit FLAC (exact up to 16-bit rounding; over the carry limit with today's checkout)")
    k = sub.add_parser("pack", help="there: a run's weights as float16 chunks + run.tar.gz")
    k.add_argument("run_dir", type=Path)
    k.add_argument("--out", type=Path, required=True)
    k.add_argument("--logs", type=Path, nargs="*", default=[])
    u = sub.add_parser("unpack", help="here: rebuild a run directory from pack's files")
    u.add_argument("files", type=Path)
    u.add_argument("--run-dir", type=Path, required=True)
    args = p.parse_args(argv)
    if args.command == "bundle":
        for folder in (args.out, args.mir1k_out if args.mir1k_root else None):
            if folder is not None and folder.exists():
                shutil.rmtree(folder)
        bundle(args.musdb_root, args.out, args.wheels, tuple(args.splits), args.mir1k_root, args.mir1k_out,
               args.codec)
    elif args.command == "pack":
        pack(args.run_dir, args.out, args.logs)
    else:
        unpack(args.files, args.run_dir)


if __name__ == "__main__":
    main()
