"""Tests of the flow-matching core: path and target, masking, guidance, ODE solvers, estimator."""
from __future__ import annotations

import importlib.util
import itertools
import math

import pytest
import torch
from torch import nn

from svslm.flow.cfm import CFM, CFMConfig, integrate, masked_mse, ot_path, warp_time
from svslm.flow.estimator import DiTConfig, UNetConfig, build_estimator
from svslm.flow.model import FlowModelConfig
from svslm.utils.config import ConfigError, from_dict


def test_path_starts_at_noise_ends_at_data_and_target_is_its_velocity():
    torch.manual_seed(0)
    x0, x1 = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    sigma = 1e-2
    start, u = ot_path(x0, x1, torch.zeros(2, 1, 1), sigma)
    end, _ = ot_path(x0, x1, torch.ones(2, 1, 1), sigma)
    assert torch.allclose(start, x0)
    assert torch.allclose(end, x1 + sigma * x0)
    assert torch.allclose(u, x1 - (1 - sigma) * x0)
    # u is the time derivative of the path (finite difference), at every t
    t, h = torch.full((2, 1, 1), 0.3), 1e-3
    numeric = (ot_path(x0, x1, t + h, sigma)[0] - ot_path(x0, x1, t - h, sigma)[0]) / (2 * h)
    assert torch.allclose(numeric, u, atol=1e-3)


def test_cosine_schedule_maps_unit_interval_onto_itself_denser_near_noise():
    u = torch.linspace(0, 1, 11)
    t = warp_time(u, "cosine")
    assert t[0] == 0 and torch.isclose(t[-1], torch.tensor(1.0))
    steps = t[1:] - t[:-1]
    assert (steps > 0).all() and (steps[1:] > steps[:-1]).all()  # small steps near the noise first
    assert torch.equal(warp_time(u, "uniform"), u)


class RecordingEstimator(nn.Module):
    """v = x * 0 + a learnable offset; remembers the last condition it saw."""

    def __init__(self):
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(1))
        self.seen_cond = None

    def forward(self, x, mask, t, cond):
        self.seen_cond = cond.clone()
        return (x * 0 + self.offset) * mask


def test_masked_loss_ignores_padding():
    pred, target = torch.zeros(1, 2, 4), torch.ones(1, 2, 4)
    mask = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    target_other_padding = target.clone()
    target_other_padding[..., 2:] = 100.0
    assert masked_mse(pred, target, mask) == pytest.approx(1.0)
    assert masked_mse(pred, target_other_padding, mask) == pytest.approx(1.0)
    # the CFM loss of a batch does not depend on what lies in its padded frames
    torch.manual_seed(0)
    cfm = CFM(RecordingEstimator(), CFMConfig(cond_drop_prob=0.0)).eval()
    x1 = torch.randn(2, 3, 6)
    mask = torch.ones(2, 1, 6)
    mask[1, :, 4:] = 0
    loss_a = cfm.loss(x1 * mask, mask, torch.zeros(2, 1, 6), generator=torch.Generator().manual_seed(1))
    x1_noisy_padding = x1 * mask + (1 - mask) * 1e3
    loss_b = cfm.loss(x1_noisy_padding, mask, torch.zeros(2, 1, 6), generator=torch.Generator().manual_seed(1))
    assert loss_a.item() == pytest.approx(loss_b.item(), rel=1e-6)


def test_condition_dropout_in_training_only():
    est = RecordingEstimator()
    cfm = CFM(est, CFMConfig(cond_drop_prob=1.0))
    x1, mask, cond = torch.randn(4, 2, 3), torch.ones(4, 1, 3), torch.ones(4, 5, 3)
    cfm.train().loss(x1, mask, cond)
    assert est.seen_cond.abs().sum() == 0  # always dropped
    cfm.eval().loss(x1, mask, cond)
    assert torch.equal(est.seen_cond, cond)  # never in evaluation
    cfm.cfg.cond_drop_prob = 0.5
    torch.manual_seed(0)
    kept = []
    for _ in range(200):
        cfm.train().loss(x1, mask, cond)
        kept += (est.seen_cond.flatten(1).abs().sum(1) > 0).tolist()
    assert 0.4 < sum(kept) / len(kept) < 0.6


class CondVelocity(nn.Module):
    """v(x, t, c) = c: with the condition zeroed the field is 0."""

    def forward(self, x, mask, t, cond):
        return cond * mask


def test_guidance_extrapolates_from_the_unconditional_field():
    cfm = CFM(CondVelocity(), CFMConfig(time_schedule="uniform"))
    x0, mask, cond = torch.randn(2, 3, 4), torch.ones(2, 1, 4), torch.randn(2, 3, 4)
    for w in (0.0, 0.7, 2.0):
        x1 = cfm.sample(x0, mask, cond, n_steps=4, guidance=w)
        # v = (1 + w) c - w * 0, integrated over unit time
        assert torch.allclose(x1, x0 + (1 + w) * cond, atol=1e-5)


class OptimalVelocity(nn.Module):
    """The exact velocity field of the OT path towards a single target point x1."""

    def __init__(self, x1, sigma_min):
        super().__init__()
        self.x1, self.sigma = x1, sigma_min

    def forward(self, x, mask, t, cond):
        t = t.view(-1, 1, 1)
        return (self.x1 - (1 - self.sigma) * x) / (1 - (1 - self.sigma) * t)


@pytest.mark.parametrize("schedule", ["uniform", "cosine"])
def test_sampling_the_exact_field_reaches_the_target_and_keeps_padding_zero(schedule):
    x1 = torch.randn(2, 3, 5)
    cfm = CFM(OptimalVelocity(x1, 1e-4), CFMConfig(sigma_min=1e-4, time_schedule=schedule))
    mask = torch.ones(2, 1, 5)
    mask[0, :, 3:] = 0
    out = cfm.sample(torch.randn(2, 3, 5), mask, torch.zeros(2, 1, 5), n_steps=3)
    assert torch.allclose(out, x1 * mask, atol=1e-3)  # straight paths: Euler is exact
    assert (out[0, :, 3:] == 0).all()


@pytest.mark.parametrize("solver, order", [("euler", 1), ("midpoint", 2)])
def test_solver_error_shrinks_with_steps_at_its_order(solver, order):
    # Linear field dx/dt = A x (a damped rotation): x(1) = expm(A) x0.
    a = torch.tensor([[-0.5, -2.0], [2.0, -0.5]])
    x0 = torch.tensor([[1.0, 0.5]]).T.unsqueeze(0)  # [1, 2, 1]
    exact = torch.linalg.matrix_exp(a) @ x0[0]
    errors = []
    for n in (4, 8, 16, 32):
        x = integrate(lambda t, x: torch.einsum("ij,bjt->bit", a, x), x0, torch.linspace(0, 1, n + 1), solver)
        errors.append((x[0] - exact).norm().item())
    assert all(e2 < e1 for e1, e2 in itertools.pairwise(errors))
    rate = math.log2(errors[-2] / errors[-1])  # doubling the steps divides the error by 2^order
    assert rate == pytest.approx(order, abs=0.3)


@pytest.mark.skipif(importlib.util.find_spec("torchdiffeq") is None, reason="torchdiffeq not installed")
def test_torchdiffeq_solver_matches_the_linear_field():
    a = torch.tensor([[-1.0]])
    x0 = torch.ones(1, 1, 1)
    x = integrate(lambda t, x: torch.einsum("ij,bjt->bit", a, x), x0, torch.linspace(0, 1, 9), "rk4")
    assert x.item() == pytest.approx(math.exp(-1), abs=1e-5)


def test_unknown_solver_is_refused():
    with pytest.raises(ValueError):
        integrate(lambda t, x: x, torch.ones(1, 1, 1), torch.linspace(0, 1, 3), "no_such_solver")


@pytest.mark.parametrize("kind", ["unet", "dit"])
def test_estimator_output_on_valid_frames_ignores_padding_and_odd_lengths_work(kind):
    torch.manual_seed(0)
    common = {"n_blocks": 1, "n_heads": 2, "head_dim": 8, "dropout": 0.0}
    cfg = (UNetConfig(channels=[16, 16, 16], n_mid_blocks=1, **common) if kind == "unet"
           else DiTConfig(kind="dit", dim=16, **common))
    est = build_estimator(out_channels=3, cond_channels=4, cfg=cfg).eval()
    if kind == "dit":  # adaLN-Zero starts every block as the identity; perturb so the test means something
        for p in est.parameters():
            p.data += 0.1 * torch.randn_like(p)
    x, cond = torch.randn(1, 3, 13), torch.randn(1, 4, 13)
    mask = torch.ones(1, 1, 13)
    mask[..., 9:] = 0
    out = est(x, mask, torch.tensor([0.3]), cond)
    assert out.shape == (1, 3, 13) and (out[..., 9:] == 0).all()
    x2, cond2 = x.clone(), cond.clone()
    x2[..., 9:], cond2[..., 9:] = 50.0, -50.0
    out2 = est(x2, mask, torch.tensor([0.3]), cond2)
    # padding never reaches the valid frames: convolutions, norms and attention all see it masked
    assert torch.allclose(out[..., :9], out2[..., :9], atol=1e-5)
    # time enters the network
    assert not torch.allclose(out, est(x, mask, torch.tensor([0.9]), cond))


def test_estimator_config_is_the_unet_or_the_dit_and_a_field_of_the_other_is_an_error():
    assert isinstance(from_dict(FlowModelConfig, {}).estimator, UNetConfig)  # the paper's, when not said
    assert isinstance(from_dict(FlowModelConfig, {"estimator": {"channels": [16, 16]}}).estimator, UNetConfig)
    dit = from_dict(FlowModelConfig, {"estimator": {"kind": "dit", "dim": 16}}).estimator
    assert isinstance(dit, DiTConfig) and dit.dim == 16
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['channels'\] for DiTConfig"):
        from_dict(FlowModelConfig, {"estimator": {"kind": "dit", "channels": [16, 16]}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dim'\] for UNetConfig"):
        from_dict(FlowModelConfig, {"estimator": {"kind": "unet", "dim": 128}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dim'\] for UNetConfig"):
        from_dict(FlowModelConfig, {"estimator": {"dim": 128}})  # a DiT field without `kind: dit`
