"""Torch device selection. torch is imported lazily so that ``import xgenfill`` stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import GenfillError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["resolve_device"]


def resolve_device(device: "str | torch.device | None" = "auto") -> "torch.device":
    """Return a usable ``torch.device``.

    ``"auto"`` (or None) picks CUDA, then Apple MPS, then the CPU. A device that was asked for
    explicitly but is absent raises :class:`GenfillError` instead of silently running elsewhere.
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
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
