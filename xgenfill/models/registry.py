"""Model names accepted by ``inpaint(model=...)`` and how to build them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import GenfillError
from .base import Filler

__all__ = ["get_filler", "model_names"]


def _dineof(**kw: Any) -> Filler:
    from .dineof import DINEOF

    return DINEOF(**kw)


def _baseline(cls_name: str) -> Callable[..., Filler]:
    def build(**kw: Any) -> Filler:
        from . import baselines

        return getattr(baselines, cls_name)(**kw)

    return build


def _pretrained(kind: str) -> Callable[..., Filler]:
    def build(variable: str = "chl", **kw: Any) -> Filler:
        from .. import zoo

        return zoo.default_model(kind, variable, **kw)

    return build


def _auto(variable: str | None = "chl", candidates: Any = None,
          holdout_fraction: float | None = None, **kw: Any) -> Filler:
    from .. import zoo
    from .guard import CLASSICAL, HOLDOUT, Guarded

    network = None if variable is None else zoo.default_model("diffusion", variable, **kw)
    if network is None and kw:
        raise GenfillError(f"model='auto' without a network takes no options {sorted(kw)}")
    return Guarded(network, CLASSICAL if candidates is None else candidates,
                   HOLDOUT if holdout_fraction is None else holdout_fraction)


_BUILDERS: dict[str, Callable[..., Filler]] = {
    "auto": _auto,
    "diffusion": _pretrained("diffusion"),
    "vae": _pretrained("vae"),
    "dineof": _dineof,
    "linear_time": _baseline("LinearTime"),
    "climatology": _baseline("Climatology"),
    "linear_space": _baseline("LinearSpace"),
    "anomaly": _baseline("AnomalyInterp"),
}


def register(name: str, builder: Callable[..., Filler]) -> None:
    """Make ``inpaint(model=name)`` build a model with ``builder(**model_kwargs)``."""
    _BUILDERS[name] = builder


def model_names() -> list[str]:
    """List the model names :func:`xgenfill.inpaint` accepts as ``model=``.

    Besides these, ``model=`` takes a registered pretrained name (:func:`xgenfill.list_models`),
    a path to saved weights, or a trained model object.

    Returns
    -------
    list of str
        The generative models (``"diffusion"``, ``"vae"``), ``"dineof"`` and the classical
        baselines, sorted.

    See Also
    --------
    xgenfill.list_models : The registered pretrained models.
    xgenfill.inpaint : Fill gaps with one of them.

    Examples
    --------
    >>> import xgenfill
    >>> xgenfill.model_names()
    ['anomaly', 'auto', 'climatology', 'diffusion', 'dineof', 'linear_space', 'linear_time', 'vae']
    """
    return sorted(_BUILDERS)


def get_filler(model: "str | Path | Filler", **kwargs: Any) -> Filler:
    """Return a :class:`Filler` from a name, a local weights path or an instance."""
    if isinstance(model, Filler):
        if kwargs:
            raise GenfillError(f"model options {sorted(kwargs)} cannot be applied to an already "
                               "built model object")
        return model
    if isinstance(model, (str, Path)):
        key = str(model)
        if key in _BUILDERS:
            try:
                return _BUILDERS[key](**kwargs)
            except TypeError as err:
                raise GenfillError(f"bad option for model {key!r}: {err}") from None
        from .. import zoo

        found = zoo.resolve(key, **kwargs)
        if found is not None:
            return found
        if "/" in key or "\\" in key or key.endswith((".safetensors", ".json")):
            raise GenfillError(f"weights path {key!r} does not exist (looked for "
                               f"{Path(key).with_suffix('.safetensors')}); check the path, or "
                               f"pass a model name: {', '.join(model_names())}")
    raise GenfillError(f"unknown model {model!r}; valid names: {', '.join(model_names())}, a "
                       "registered pretrained model (xgenfill.list_models()), or a path to saved "
                       "weights")
