"""Tiled network application: exact with a full halo, smooth blending of tile seams, periodic
longitude, and the blending weights themselves."""

import numpy as np
import pytest
import torch

from xgenfill.models.nets import UNet
from xgenfill.tiling import blend_weights, tiled_apply


def random_unet(c_in=3, widths=(8, 16, 16)):
    """A U-Net with random (non-zero) weights: its receptive radius is 5 * 2**3 - 1 = 39."""
    torch.manual_seed(0)
    net = UNet(c_in, 1, widths, emb_dim=0).eval()
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.weight, std=0.15)
    return lambda w: net(w).detach()


@pytest.mark.parametrize("e", [1, 4, 8, 13])
def test_blend_weights_are_a_partition_of_unity(e):
    tile = 24
    total = torch.zeros(4 * tile + 2 * e)
    for k in range(4):
        total[k * tile:k * tile + tile + 2 * e] += blend_weights(tile, e)
    # away from the two outer ends every position is covered by weights summing to 1
    torch.testing.assert_close(total[2 * e:-2 * e], torch.ones(4 * tile - 2 * e))
    w = blend_weights(tile, e)
    assert (w[:e] < 0.5).all() and (w[e + e:-2 * e] == 1).all() and (w >= 0).all()
    assert torch.all(w[1:2 * e] >= w[:2 * e - 1])  # smooth monotone ramp up


def test_identity_is_reproduced_whatever_the_tiles_and_blend():
    x = torch.randn(2, 1, 50, 70)
    for tile, blend in ((8, 0), (16, 6), (24, 16), (40, 30)):
        out = tiled_apply(lambda w: w, x, tile=tile, halo=8, blend=blend)
        torch.testing.assert_close(out, x)


@pytest.mark.parametrize("periodic", [False, True])
def test_full_halo_gives_the_untiled_result(periodic):
    fn = random_unet()
    x = torch.randn(2, 3, 72, 120)
    if periodic:  # reference: the whole globe seen with wrapped context on both sides
        wide = torch.cat([x, x, x], dim=-1)
        ref = fn(wide)[..., 120:240]  # rows keep the network's zero padding, as tiles do
    else:
        ref = fn(x)
    for tile, blend in ((16, 0), (24, 8), (40, 16)):
        out = tiled_apply(fn, x, tile=tile, halo=39 + blend // 2, multiple=8, blend=blend,
                          periodic_x=periodic, batch_size=5)
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_blending_hides_the_seams_of_a_short_halo():
    """With a halo shorter than the receptive field the tiles disagree at their edges; smooth
    blending spreads the jump over a ramp (it cannot make the tiles right, only seamless)."""
    fn = random_unet()
    x = torch.randn(1, 3, 96, 96)
    ref = fn(x)[0, 0]
    for halo in (16, 24):
        crop = tiled_apply(fn, x, tile=32, halo=halo, blend=0)[0, 0]
        smooth = tiled_apply(fn, x, tile=32, halo=halo, blend=16)[0, 0]

        def seam_jump(out):  # mean jump of the error across the tile edges (columns 32, 64)
            d = (out - ref).numpy()
            return np.mean([np.abs(d[:, c] - d[:, c - 1]).mean() for c in (32, 64)])

        assert seam_jump(smooth) < 0.6 * seam_jump(crop), halo
