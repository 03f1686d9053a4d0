"""Data-parallel training on torch.distributed: two CPU processes with the gloo backend on
127.0.0.1 train exactly what one process trains with the same total batch."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from .conftest import make_clouds, make_field

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")


def _cube():
    from xgenfill.models.base import Cube

    v = make_field(nt=12, ny=16, nx=16).astype(np.float32)
    v[make_clouds(v.shape, frac=0.35)] = np.nan
    return Cube(values=v, ocean=np.ones((16, 16), bool), doy=np.arange(12.0))


def _train(kind: str) -> tuple[dict, dict]:
    from xgenfill.models.io import model_classes

    m = model_classes()[kind](device="cpu", widths=(8, 16), window=1)
    m.fit([_cube()], max_steps=4, batch_size=4, patch=16, eval_every=2, progress=False,
          seed=3)
    hist = m.meta["training"]
    return {k: v.detach().clone() for k, v in m.net.state_dict().items()}, hist


def _worker(rank: int, world: int, port: int, kind: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        state, hist = _train(kind)
        if rank == 0:
            torch.save({"state": state, "hist": {k: hist[k] for k in ("steps", "processes")}},
                       out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the VAE's check behind -m slow: the default run stays under its time budget
@pytest.mark.parametrize("kind", ["diffusion", pytest.param("vae", marks=pytest.mark.slow)])
def test_two_processes_match_one(kind, tmp_path):
    import torch.multiprocessing as mp

    torch.set_num_threads(1)
    one, hist1 = _train(kind)
    out = str(tmp_path / "two.pt")
    mp.spawn(_worker, args=(2, _free_port(), kind, out), nprocs=2, join=True)
    two = torch.load(out)
    assert two["hist"]["processes"] == 2 and hist1["processes"] == 1
    assert two["hist"]["steps"] == hist1["steps"] == 4
    for k, v in one.items():
        if v.dtype.is_floating_point:
            torch.testing.assert_close(two["state"][k], v, rtol=1e-4, atol=1e-6)
    # the training moved the weights: the comparison is not between two untouched copies
    from xgenfill.models.io import model_classes

    fresh = model_classes()[kind](device="cpu", widths=(8, 16), window=1).net.state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in one.items())


def test_batch_must_split_evenly():
    from xgenfill.errors import GenfillError
    from xgenfill.models.training import batch_part

    b = {"y": torch.zeros(5, 4, 4), "hidden": torch.ones(5, 4, 4, dtype=torch.bool)}
    with pytest.raises(GenfillError, match="multiple of the 2 processes"):
        batch_part(b, 0, 2)
    part = batch_part({"y": torch.arange(4.0)[:, None, None].expand(4, 2, 2),
                       "hidden": torch.ones(4, 2, 2, dtype=torch.bool)}, 1, 2)
    assert part["full"] == 4 and part["part"] == slice(2, 4) and int(part["norm"]) == 16
    assert part["y"][:, 0, 0].tolist() == [2.0, 3.0]
