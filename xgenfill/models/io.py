"""Load saved neural models: a safetensors file (never pickle) plus its JSON config, with the
weights' sha256 checked before anything is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import GenfillError, WeightsError
from ..hashing import sha256_file

__all__ = ["load_model", "model_classes", "config_path"]


def model_classes() -> dict[str, type]:
    from .diffusion import DiffusionFiller
    from .joint import JointDiffusionFiller, JointVAEFiller
    from .vae import VAEFiller

    return {"diffusion": DiffusionFiller, "vae": VAEFiller,
            "joint_diffusion": JointDiffusionFiller, "joint_vae": JointVAEFiller}


def config_path(path: Path) -> tuple[Path, Path]:
    """(weights, config) paths for a stem, a .safetensors or a .json path."""
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def load_model(path: str | Path, expected_sha256: str | None = None, **overrides: Any):
    """Load a model saved with ``model.save(path)``.

    Parameters
    ----------
    path
        The ``.safetensors`` file, its ``.json`` config, or their common stem.
    expected_sha256
        Hash the weights must have (the registry's); defaults to the one in the config.
    **overrides
        Runtime options (``device``, ``tile``, ``batch_size``, ``steps``, ``sampler``...).

    Raises
    ------
    WeightsError
        Missing, truncated or corrupted files, or a hash mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, cfg_path = config_path(Path(path).expanduser())
    for p in (weights, cfg_path):
        if not p.exists():
            raise WeightsError(f"model file {p} is missing (a saved model is a .safetensors "
                               "file plus a .json config)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightsError(f"model config {cfg_path} is corrupted: {err}") from None
    digest = sha256_file(weights)
    want = expected_sha256 or cfg.get("weights_sha256")
    if want and digest != want.removeprefix("sha256:"):
        raise WeightsError(f"weights {weights} have sha256 {digest[:12]}..., expected "
                           f"{want.removeprefix('sha256:')[:12]}...: the file is corrupted or "
                           "truncated; delete it (it will be downloaded again)")
    kind = cfg.get("kind")
    classes = model_classes()
    if kind not in classes:
        raise WeightsError(f"{cfg_path}: unknown model kind {kind!r}")
    arch = cfg["arch"]
    runtime = {k: overrides.pop(k) for k in list(overrides)
               if k in ("device", "tile", "halo", "batch_size", "time_batch", "progress")}
    options = {**cfg.get("options", {}), **overrides}
    try:
        model = classes[kind](window=arch["window"], widths=tuple(arch["widths"]),
                              n_covariates=arch.get("n_covariates", 0),
                              guides=arch.get("guides", False),  # saved before guides existed
                              residual=arch.get("residual", False),
                              # saved before the first guess had versions: version 1
                              first_guess=arch.get("first_guess", 1),
                              dineof_guide=arch.get("dineof_guide", False),
                              **runtime, **options)
    except TypeError as err:
        raise GenfillError(f"bad option for model {kind!r}: {err}") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"weights {weights} cannot be read ({err}); the file is corrupted")
    try:
        model.net.load_state_dict(state)
    except RuntimeError as err:
        raise WeightsError(f"weights {weights} do not match the architecture in {cfg_path}: "
                           f"{str(err).splitlines()[0]}") from None
    model.net.eval()
    model.meta = dict(cfg.get("meta", {}))
    model.weights_hash = "sha256:" + digest
    model.source = str(weights.with_suffix(""))
    return model
