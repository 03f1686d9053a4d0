"""Training-crop augmentation: every sample flipped/transposed as one piece."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xgenfill  # noqa: E402
from xgenfill.models import training  # noqa: E402
from xgenfill.models.training import flip_views  # noqa: E402

from .conftest import TINY, make_chl  # noqa: E402


def _batch(n: int, h: int, w: int, c: int = 3) -> dict:
    g = torch.Generator().manual_seed(0)
    y = torch.randn(n, h, w, generator=g)
    return {"y": y, "obs": y > -1, "hidden": y > 1, "ocean": y > -2,
            "ctx": torch.randn(n, c, h, w, generator=g), "where": [(0, 0, 0)] * n}


def _undo(a: torch.Tensor, ops) -> torch.Tensor:
    fy, fx, tr = ops
    if tr:
        a = a.transpose(-2, -1)
    if fx:
        a = a.flip(-1)
    if fy:
        a = a.flip(-2)
    return a


@pytest.mark.parametrize("shape", [(8, 8), (8, 16)])
def test_flip_views_move_every_channel_of_a_sample_together(shape):
    batch = _batch(64, *shape)
    out = flip_views(batch, np.random.default_rng(1))
    ops = out["views"]
    for i in range(64):
        for key in ("y", "obs", "hidden", "ocean", "ctx"):
            assert torch.equal(_undo(out[key][i], ops[i]), batch[key][i]), key
    seen = {tuple(o) for o in ops.tolist()}
    if shape[0] == shape[1]:
        assert len(seen) == 8  # all eight symmetries of a square occur
    else:
        assert not ops[:, 2].any() and len(seen) == 4  # never transposes a rectangle
    assert torch.equal(batch["y"], _batch(64, *shape)["y"])  # the input batch is untouched


def test_training_augments_only_when_asked(monkeypatch):
    calls = []

    def spy(batch, rng):
        calls.append(1)
        return flip_views(batch, rng)

    monkeypatch.setattr(training, "flip_views", spy)
    da = make_chl(nt=20, seed=3)

    def run(**kw):
        calls.clear()
        m = xgenfill.train(da, model="vae", max_steps=3, patch=16, progress=False, **kw,
                           **TINY)
        assert m.meta["training"]["augment"] == bool(calls)
        return len(calls)

    assert run() == 0  # off by default
    assert run(augment=True) == 3
    with pytest.raises(xgenfill.GenfillError, match="augment"):
        run(augment="yes")
