"""The small interface every gap-filling model implements.

A model sees one normalised cube at a time: ``values`` (time, y, x) in transformed and
standardised units with NaN where missing, plus the ocean mask. It returns members (K, time, y, x)
in the same units. Everything about xarray, CF metadata and units lives above this layer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Cube", "Fill", "Filler"]


@dataclass
class Cube:
    """One independent field, normalised."""

    values: np.ndarray  # (T, Y, X) float32, NaN = missing (and land)
    ocean: np.ndarray  # (Y, X) bool, True where filling is allowed
    doy: np.ndarray | None = None  # (T,) day of year
    time_index: np.ndarray | None = None  # (T,) days (or steps) since the first step
    periodic_x: bool = False
    covariates: np.ndarray | None = None  # (C, T, Y, X) normalised extra inputs, NaN allowed
    steps: np.ndarray | None = None  # (T,) bool: only these time steps need filling (None: all)
    t_offset: int = 0  # absolute index of the first step (keeps random draws chunk-independent)
    # absolute row / column of each pixel when the cube is a spatial chunk with halos (wrapped
    # on global grids); None: 0..Y-1, 0..X-1
    y_index: np.ndarray | None = None
    x_index: np.ndarray | None = None

    @property
    def observed(self) -> np.ndarray:
        return np.isfinite(self.values)

    @property
    def gaps(self) -> np.ndarray:
        gaps = ~self.observed & self.ocean[None]
        if self.steps is not None:
            gaps &= np.asarray(self.steps, bool)[:, None, None]
        return gaps


@dataclass
class Fill:
    """What a model returns for one cube (normalised units)."""

    samples: np.ndarray  # (K, T, Y, X); K = 1 for deterministic models; NaN = could not fill
    std: np.ndarray | None = None  # (T, Y, X) model's own error estimate (deterministic models)
    # (T, Y, X) the model's best estimate when it is not the members' mean (diffusion: the
    # network's conditional mean); None: the mean of ``samples``
    mean: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def best(self) -> np.ndarray:
        """The point estimate, (T, Y, X)."""
        if self.mean is not None:
            return self.mean
        return self.samples.mean(axis=0) if self.samples.shape[0] > 1 else self.samples[0]


class Filler(ABC):
    """Base class of gap-filling models."""

    name: str = "filler"
    stochastic: bool = False  # True when n_samples > 1 gives distinct members
    needs_time: bool = False  # True when a time axis with several steps is required
    # how far (pixels) the fill at a pixel looks in space: 0 pixel-wise, None the whole field
    spatial_radius: int | None = None
    weights_hash: str | None = None

    @property
    def has_point_estimate(self) -> bool:
        """Whether :attr:`Fill.mean` carries a point estimate of the model's own beside its
        members (otherwise the point estimate is the members' mean)."""
        return False

    def radius_for(self, n_samples: int) -> int | None:
        """:attr:`spatial_radius` of a fill with ``n_samples`` members."""
        return self.spatial_radius

    def fit(self, cubes: list[Cube], **kwargs: Any) -> "Filler":  # noqa: D401
        """Learn from gappy cubes (no-op for models that need no training)."""
        return self

    @abstractmethod
    def fill(self, cube: Cube, n_samples: int = 1, seed: int | None = 0) -> Fill:
        """Fill the gaps of one cube."""

    def describe(self) -> str:
        return self.name
