"""What machine this is, and TensorFlow's CPU settings that depend on it.

Import this module (and call `configure_tensorflow()`) before TensorFlow: oneDNN is switched on
through an environment variable that TensorFlow reads once, at import. TensorFlow leaves its
oneDNN optimizations off on CPUs without AVX-512; on a 2-core AMD EPYC with AVX2 only they
doubled base-8 U-Net training (3.1-3.5 -> 6.3 examples/s, issue 12), so every entry point turns
them on unless the user chose otherwise.
"""
from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache

# Flags that decide which precision pays: bfloat16 matmuls need AMX or AVX512-BF16 in hardware.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def configure_tensorflow() -> None:
    """Set TensorFlow's start-up environment (before `import tensorflow`); the user's values win."""
    if "tensorflow" in sys.modules:
        return      # too late to change anything; the running process keeps what it has
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@lru_cache(maxsize=1)
def cpu_info() -> dict:
    """CPU model, logical cores and the ISA flags that matter here (Linux /proc/cpuinfo; else platform)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                if flags and key == "model name":
                    break
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in ISA_FLAGS if f in flags]}


def has_fast_bfloat16() -> bool:
    """True on CPUs with bfloat16 arithmetic in hardware (AMX or AVX512-BF16)."""
    return any(f in cpu_info()["flags"] for f in BF16_FLAGS)


def keras_backend() -> str:
    """The Keras backend this process uses (KERAS_BACKEND, else Keras' config; tensorflow by default)."""
    import keras
    return keras.backend.backend()


def gpu_names() -> list[str]:
    """The GPUs the Keras backend sees, by name."""
    backend = keras_backend()
    if backend == "jax":
        import jax
        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    import tensorflow as tf
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (ValueError, RuntimeError):
            names.append(gpu.name)
    return names


def backend_version() -> dict:
    """{backend name: version} of the Keras backend in use."""
    backend = keras_backend()
    module = __import__({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend))
    return {backend: module.__version__}


def onednn_state() -> str:
    """'on' or 'off' as TensorFlow will see it (TF_ENABLE_ONEDNN_OPTS), with who decided."""
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is None:
        return "TensorFlow's default (off without AVX-512)"
    return "on" if value.strip().lower() in ("1", "true", "yes", "on") else "off"


# Environment variables that cap the instruction sets libraries dispatch to (oneDNN in TensorFlow,
# OpenVINO and PyTorch; OpenVINO's own kernels; PyTorch's ATen; MKL), and the precision separation
# asks OpenVINO for: set together they make an AVX-512/AMX machine run the kernels of an AVX2-only
# one (README, "Session 16"), so a figure measured under them must say so.
OPENVINO_PRECISION_VARIABLE = "SEPARATE_OPENVINO_PRECISION"      # read by separation.openvino_precision
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OV_CPU_MAX_ISA", "ATEN_CPU_CAPABILITY",
                     "MKL_ENABLE_INSTRUCTIONS", OPENVINO_PRECISION_VARIABLE)


def isa_caps() -> dict[str, str]:
    """The ISA_CAP_VARIABLES set in this process's environment."""
    return {name: os.environ[name] for name in ISA_CAP_VARIABLES if os.environ.get(name)}


def describe(with_tensorflow: bool = True) -> str:
    """One header line for benchmarks and logs: CPU, cores, ISA flags (and any caps on them),
    TensorFlow and oneDNN."""
    info = cpu_info()
    line = f"CPU: {info['model']}, {info['cores']} cores, flags {' '.join(info['flags']) or 'none of ' + '/'.join(ISA_FLAGS)}"
    if caps := isa_caps():
        line += " (capped: " + " ".join(f"{name}={value}" for name, value in caps.items()) + ")"
    backend = keras_backend()
    if backend != "tensorflow":
        line += (f"; Keras backend {backend} {backend_version()[backend]}, "
                 f"GPUs: {', '.join(gpu_names()) or 'none'}")
    elif with_tensorflow:
        try:
            import tensorflow as tf
            gpus = [g.name for g in tf.config.list_physical_devices("GPU")]
            line += f"; TensorFlow {tf.__version__}, oneDNN {onednn_state()}, GPUs: {', '.join(gpus) or 'none'}"
        except ImportError:
            line += "; TensorFlow not installed"
    return line


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
REUSE_BYTES = 256 * 2 ** 20


def one_blas_thread() -> bool:
    """Run NumPy's and SciPy's OpenBLAS on one thread, process-wide. Separation calls BLAS only on
    small arrays, and after each call OpenBLAS's idle workers spin on the other cores for a while:
    the model call that follows ran at half speed on 2 cores (52 instead of 26 ms for a 7-second
    song's windows; README, Measured performance). Loads scipy.linalg first so that both OpenBLAS
    copies are limited. False where threadpoolctl is missing (nothing changed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS, which the limit must see)
    threadpool_limits(1, user_api="blas")
    return True


def reuse_freed_memory(limit_bytes: int = REUSE_BYTES) -> bool:
    """Let glibc's malloc keep freed blocks of up to `limit_bytes` for reuse instead of returning them
    to the kernel. Separation allocates the same few 5-100 MB arrays (spectrograms, Wiener planes)
    for every chunk; by default each is a fresh mmap whose pages the kernel faults in and zeroes
    again, which made the first Wiener call on a chunk 2-4x slower than the next (bench/wiener.py's
    warm figure). Process-wide and harmless elsewhere; False where the C library is not glibc."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, limit_bytes)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * limit_bytes))
    except (OSError, AttributeError):
        return False
