"""gsplat's CUDA rasteriser and the pure-torch rasteriser agree on the same scene (values and gradients)."""
from __future__ import annotations

import pytest
import torch

from atop_models.geometry.cameras import imagedream_rig
from atop_models.render.gaussians import gsplat_unavailable_reason, rasterize_gaussians

pytestmark = pytest.mark.gpu


def _scene(n: int, channels: int, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    means = (torch.rand(2, n, 3, generator=g) - 0.5) * 0.8  # two scenes (frames)
    quats = torch.randn(2, n, 4, generator=g)
    log_scales = torch.log(torch.rand(n, 3, generator=g) * 0.03 + 0.01)
    logits = torch.randn(n, generator=g)
    feats = torch.rand(n, channels, generator=g)
    return [t.to(device).requires_grad_() for t in (means, quats, log_scales, logits, feats)]


@pytest.mark.parametrize("channels,res", [(4, 32), (3, 128)])
def test_gsplat_matches_torch(channels, res):
    device = torch.device("cuda")
    reason = gsplat_unavailable_reason(device)
    if reason is not None:
        pytest.skip(f"gsplat unavailable: {reason}")
    rig = imagedream_rig(resolution=res)
    outs, grads = {}, {}
    target = torch.rand(2, 4, res, res, channels, device=device)
    bg = torch.full((channels,), 0.25, device=device)
    for backend in ("gsplat", "torch"):
        params = _scene(2000, channels, device)
        r = rasterize_gaussians(*params, rig, res, res, background=bg, backend=backend)
        assert r.backend == backend
        ((r.features - target) ** 2).sum().backward()
        outs[backend] = r.features.detach()
        grads[backend] = torch.cat([p.grad.reshape(-1) for p in params])
    diff = (outs["gsplat"] - outs["torch"]).abs().mean().item()
    assert diff <= 1e-3, diff
    cos = torch.nn.functional.cosine_similarity(grads["gsplat"], grads["torch"], dim=0).item()
    assert cos >= 0.99, cos


def test_auto_prefers_gsplat_on_cuda():
    device = torch.device("cuda")
    reason = gsplat_unavailable_reason(device)
    rig = imagedream_rig(resolution=16)
    r = rasterize_gaussians(*[p.detach() for p in _scene(10, 3, device)], rig, 16, 16)
    if reason is None:
        assert r.backend == "gsplat" and "auto" in r.info
    else:
        assert r.backend == "torch" and reason in r.info
