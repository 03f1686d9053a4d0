"""Torch device selection. torch is imported lazily so that ``import xgenfill`` stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import GenfillError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["resolve_device", "check_precision", "compute_dtype", "memory_format", "autocast",
           "PRECISIONS"]

PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_device(device: "str | torch.device | None" = "auto") -> "torch.device":
    """Return a usable ``torch.device``.

    ``"auto"`` (or None) picks CUDA, then Apple MPS, then the CPU. A device that was asked for
    explicitly but is absent raises :class:`GenfillError` instead of silently running elsewhere.
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            import os

            # one process per device (torchrun sets LOCAL_RANK): this process's own GPU
            local = os.environ.get("LOCAL_RANK")
            if local is not None and int(local) < torch.cuda.device_count():
                return torch.device("cuda", int(local))
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise GenfillError(f"unknown device {device!r}: {err}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GenfillError(f"device={device!r} was requested but CUDA is not available "
                               "here; use device='cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GenfillError(f"device={device!r}: only {torch.cuda.device_count()} CUDA "
                               "device(s) present")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise GenfillError(f"device={device!r} was requested but MPS is not available")
    elif dev.type != "cpu":
        raise GenfillError(f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'")
    return dev


def _cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 dot-product instructions (AVX512-BF16, AMX), where oneDNN runs
    bf16 convolutions 2-4x faster than float32; elsewhere bf16 is emulated and slower."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise GenfillError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def compute_dtype(device: "torch.device", precision: str = "auto") -> "torch.dtype":
    """The dtype network calls run in: ``"auto"`` is bfloat16 on CUDA and on CPUs with native
    bf16 arithmetic, float32 elsewhere (MPS, older CPUs)."""
    import torch

    check_precision(precision)
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" or (device.type == "cpu" and _cpu_has_native_bf16()):
        return torch.bfloat16
    return torch.float32


def memory_format(device: "torch.device") -> "torch.memory_format":
    """Channels-last on CPU (oneDNN's fast convolution layout), the default elsewhere."""
    import torch

    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def autocast(device: "torch.device", dtype: "torch.dtype"):
    """Autocast to ``dtype`` on ``device``, or nothing at all for float32 (so that devices
    without autocast support, e.g. MPS on older torch, are never asked for it)."""
    import contextlib

    import torch

    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
