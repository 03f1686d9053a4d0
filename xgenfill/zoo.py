"""Pretrained models: a pooch registry (sha256 for every file), an embedded default, local paths.

Environment:

- ``XGENFILL_CACHE_DIR``: where downloaded weights live (default: the OS cache, via pooch).
- ``XGENFILL_BASE_URL``: a mirror; every file is fetched from ``<mirror>/<file name>``.
- ``XGENFILL_OFFLINE=1``: never touch the network; only cached or embedded weights are used.

``inpaint(model="diffusion")`` uses the registry's default for that kind when it is cached, and
the small model embedded in the package otherwise, so a fresh offline install works.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import GenfillError, OfflineError, WeightsError

__all__ = ["list_models", "fetch", "load", "resolve", "default_model", "cache_dir", "download",
           "ModelEntry"]

_REGISTRY_FILE = "registry.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEntry:
    """One pretrained model: its files (name -> sha256) and its card."""

    name: str
    kind: str
    variable: str
    files: dict[str, str]
    size: int
    embedded: bool
    card: dict[str, Any]

    @property
    def weights_file(self) -> str:
        return next(f for f in self.files if f.endswith(".safetensors"))


def _registry() -> dict[str, Any]:
    text = (resources.files("xgenfill") / _REGISTRY_FILE).read_text()
    return json.loads(text)


def entries() -> dict[str, ModelEntry]:
    reg = _registry()
    return {name: ModelEntry(name=name, kind=e["kind"], variable=e["variable"],
                             files=e["files"], size=int(e["size"]),
                             embedded=bool(e.get("embedded", False)), card=e.get("card", {}))
            for name, e in reg["models"].items()}


def offline() -> bool:
    return os.environ.get("XGENFILL_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _pooch():
    import pooch

    reg = _registry()
    base = os.environ.get("XGENFILL_BASE_URL") or reg["base_url"]
    base = base if base.endswith("/") else base + "/"
    files = {f: f"sha256:{h}" for e in entries().values() if not e.embedded
             for f, h in e.files.items()}
    # per-file URLs always win over base_url in pooch, so a mirror rewrites them all
    urls = {f: base + f for f in files}
    return pooch.create(path=pooch.os_cache("xgenfill"), base_url=base, version=None,
                        env="XGENFILL_CACHE_DIR", registry=files, urls=urls,
                        retry_if_failed=2)


def cache_dir() -> Path:
    """Where downloaded weights are cached (``XGENFILL_CACHE_DIR`` overrides)."""
    return Path(_pooch().abspath)


def _embedded_dir() -> Path:
    return Path(str(resources.files("xgenfill") / "models" / "weights"))


def _cached_ok(entry: ModelEntry) -> bool:
    from .hashing import sha256_file

    root = cache_dir()
    return all((root / f).exists() and sha256_file(root / f) == h for f, h in entry.files.items())


def list_models() -> list[dict[str, Any]]:
    """List the registered pretrained models, their size and whether they work offline.

    A model is usable offline when it is embedded in the package or already in the cache
    (:func:`cache_dir`, ``XGENFILL_CACHE_DIR``); ``xgenfill models download`` fills the cache.
    ``xgenfill.models()`` is the same call.

    Returns
    -------
    list of dict
        One dict per model: ``name``, ``kind`` (``"diffusion"``, ``"vae"``), ``variable``
        (its family: ``"chl"``, ``"sst"``), ``size_mb``, ``embedded``, ``cached`` and a
        one-line ``description``.

    See Also
    --------
    model_names : The names ``inpaint(model=...)`` accepts.
    inpaint : Fill gaps with one of them (``model=name``).

    Examples
    --------
    >>> import xgenfill
    >>> rows = xgenfill.list_models()
    >>> sorted(r["name"] for r in rows if r["embedded"])
    ['diffusion-chl-v1', 'diffusion-sst-v1', 'vae-chl-v1', 'vae-sst-v1']
    """
    out = []
    for e in entries().values():
        out.append({"name": e.name, "kind": e.kind, "variable": e.variable,
                    "size_mb": round(e.size / 1e6, 2), "embedded": e.embedded,
                    "cached": e.embedded or _cached_ok(e),
                    "description": e.card.get("summary", "")})
    return out


def _get(name: str) -> ModelEntry:
    all_entries = entries()
    if name not in all_entries:
        raise GenfillError(f"unknown pretrained model {name!r}; registered: {sorted(all_entries)}")
    return all_entries[name]


def fetch(name: str, progress: bool = False) -> Path:
    """Local path (stem) of a registered model's files, downloading them if needed."""
    entry = _get(name)
    if entry.embedded:
        return _embedded_dir() / Path(entry.weights_file).stem
    root = cache_dir()
    if offline():
        if not _cached_ok(entry):
            raise OfflineError(
                f"model {name!r} is not in the cache ({root}) and XGENFILL_OFFLINE is set; on a "
                "machine with network run `xgenfill models download` (point XGENFILL_CACHE_DIR "
                "at a shared folder), or unset XGENFILL_OFFLINE")
        return root / Path(entry.weights_file).stem
    pup = _pooch()
    try:
        for f in entry.files:
            pup.fetch(f, progressbar=progress)
    except ValueError as err:  # pooch: a hash mismatch, or a URL it cannot fetch from
        text = str(err)
        if "hash" in text.lower():
            raise WeightsError(f"download of {name!r} failed its sha256 check: {err}") from None
        base = os.environ.get("XGENFILL_BASE_URL") or _registry()["base_url"]
        hint = (" pooch cannot download from file:// URLs: copy the files into "
                f"XGENFILL_CACHE_DIR ({root}) instead, or serve the folder over http"
                if base.startswith("file:") else "")
        raise OfflineError(f"could not download model {name!r} from {base}: {text[:160]}."
                           + hint) from None
    except Exception as err:  # requests' connection errors and the like
        if isinstance(err, GenfillError):
            raise
        raise OfflineError(
            f"could not download model {name!r} ({type(err).__name__}: {str(err)[:120]}); "
            f"check the network or XGENFILL_BASE_URL, or copy the files into XGENFILL_CACHE_DIR "
            f"({root}) with `xgenfill models download` on a connected machine") from None
    return root / Path(entry.weights_file).stem


def load(name: str, progress: bool = False, **overrides: Any):
    """Fetch (if needed), verify and load a registered model. A corrupted cached file is
    deleted and downloaded once more."""
    from .models.io import load_model

    entry = _get(name)
    stem = fetch(name, progress)
    try:
        model = load_model(stem, expected_sha256=entry.files[entry.weights_file], **overrides)
        model.source = name
        log.info("pretrained model %s (%s, %s family) from %s", name, entry.kind,
                 entry.variable, stem.parent)
        return model
    except WeightsError:
        if entry.embedded or offline():
            raise
        for f in entry.files:
            (cache_dir() / f).unlink(missing_ok=True)
        stem = fetch(name, progress)
        model = load_model(stem, expected_sha256=entry.files[entry.weights_file], **overrides)
        model.source = name
        return model


def download(names: list[str] | None = None, progress: bool = False) -> list[Path]:
    """Download registered models (all downloadable ones by default) into the cache."""
    all_entries = entries()
    names = names or [n for n, e in all_entries.items() if not e.embedded]
    return [fetch(n, progress) for n in names]


def default_model(kind: str, variable: str = "chl", **overrides: Any):
    """The default pretrained model of a kind for a variable family (``"chl"``: log10
    chlorophyll, ``"sst"``: standardised temperature): the registry's default when it is
    cached, otherwise the one of that family embedded in the package (no network). A model of
    another family is never substituted."""
    reg = _registry()
    preferred = reg["defaults"].get(kind, {}).get(variable)
    embedded = reg["embedded_defaults"].get(kind, {}).get(variable)
    if preferred and _cached_ok(_get(preferred)):
        return load(preferred, **overrides)
    if embedded is not None:
        return load(embedded, **overrides)
    if preferred is None:
        raise GenfillError(f"no pretrained {kind!r} model for the {variable!r} family; use a "
                           "classical model (model='dineof') or train one (xgenfill.train)")
    return load(preferred, **overrides)  # downloads it, or says why it cannot


def resolve(key: str, **kwargs: Any):
    """A model for a registered name or a local path, or None when ``key`` is neither."""
    if key in entries():
        return load(key, **kwargs)
    path = Path(key).expanduser()
    if path.exists() or path.with_suffix(".safetensors").exists():
        from .models.io import load_model

        return load_model(path, **kwargs)
    return None
