"""Pretrained models: local paths now; the pooch registry is added with the model zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def resolve(key: str, **kwargs: Any):
    """Return a model for a pretrained name or a local path, or None when ``key`` is neither."""
    path = Path(key).expanduser()
    if path.exists():
        from .models.io import load_model

        return load_model(path, **kwargs)
    return None
