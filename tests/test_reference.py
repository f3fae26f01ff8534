"""The spec's reference BatchNorm (bnconform.reference), pinned exactly: against
torch.nn.functional.batch_norm where PyTorch has the same convention, and against formulas
written out by hand here (per channel, over the flattened other axes) everywhere else.

Every estimator, eps placement, channel axis (1 and -1), rank 2..5, momentum convention and
affine combination; float64 throughout, so the comparisons are tight."""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Mapping

import pytest
import torch
import torch.nn.functional as F

from bnconform.reference import (
    Behaviour,
    RunningState,
    affine,
    batch_statistics,
    channel_view,
    count_over,
    eval_forward,
    normalize,
    squeeze_channels,
    train_forward,
    update_running,
)
from bnconform.spec import Spec, load_spec
from tests._strings import fresh

C = 3
SHAPES = {2: (6, C), 3: (4, C, 5), 4: (3, C, 4, 2), 5: (2, C, 3, 2, 2)}
RANKS = sorted(SHAPES)
# Reduction axes of the channel-first (pytorch) and channel-last (flax) layouts.
FIRST = {2: (0,), 3: (0, 2), 4: (0, 2, 3), 5: (0, 2, 3, 4)}
LAST = {2: (0,), 3: (0, 1), 4: (0, 1, 2), 5: (0, 1, 2, 3)}



def sample(rank: int, axis: int = 1, seed: int = 0) -> torch.Tensor:
    """Per-channel different means and scales, so a statistic over the wrong axes shows."""
    g = torch.Generator().manual_seed(seed + rank)
    x = torch.randn(SHAPES[rank], generator=g, dtype=torch.float64)
    x = x * torch.tensor([0.5, 2.0, 7.0], dtype=torch.float64).reshape([1, C] + [1] * (rank - 2))
    x = x + torch.tensor([-3.0, 0.25, 11.0], dtype=torch.float64).reshape([1, C] + [1] * (rank - 2))
    return x if axis == 1 else x.movedim(1, -1).contiguous()


def by_channel(x: torch.Tensor, axis: int) -> torch.Tensor:
    """(C, n): each channel's values in one row."""
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def hand_stats(x: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Per-channel mean, biased and unbiased variance, and the count, written out."""
    rows = by_channel(x, axis)
    n = rows.shape[1]
    mean = rows.sum(1) / n
    dev = rows - mean[:, None]
    sq = (dev * dev).sum(1)
    return mean, sq / n, sq / (n - 1), n


def per_channel(values: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    shape = [1] * x.dim()
    shape[axis] = -1
    return values.reshape(shape)


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


def vec(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# -- the public signatures ---------------------------------------------------------------------

Tensor = torch.Tensor
OptTensor = torch.Tensor | None


def test_the_public_type_hints_resolve_to_the_documented_types() -> None:
    """Type checkers, IDEs and documentation tools read these annotations (the module keeps them as
    strings); each must resolve, and say which arguments may be None."""
    hints = typing.get_type_hints
    assert hints(Behaviour) == {
        "channel_axis": int, "reduction_axes": Mapping[int, tuple[int, ...]], "norm_variance": str,
        "eps": float, "eps_placement": str, "new_weight": float | None, "running_var_estimator": str,
        "train_uses": str, "running_init": tuple[float, float]}
    assert hints(Behaviour.from_spec) == {"spec": Spec, "momentum": float | None, "return": Behaviour}
    assert hints(Behaviour.but) == {"changes": object, "return": Behaviour}
    assert hints(RunningState) == {"mean": Tensor, "var": Tensor, "steps": int}
    assert hints(RunningState.clone) == {"return": RunningState}
    assert hints(channel_view) == {"values": Tensor, "rank": int, "channel_axis": int, "return": Tensor}
    assert hints(batch_statistics) == {"x": Tensor, "axes": tuple[int, ...], "estimator": str,
                                       "return": tuple[Tensor, Tensor]}
    assert hints(count_over) == {"x": Tensor, "axes": tuple[int, ...], "return": int}
    assert hints(normalize) == {"x": Tensor, "mean": Tensor, "var": Tensor, "eps": float, "placement": str,
                                "return": Tensor}
    assert hints(affine) == {"x_hat": Tensor, "weight": OptTensor, "bias": OptTensor, "axis": int, "return": Tensor}
    assert hints(squeeze_channels) == {"t": Tensor, "return": Tensor}
    assert hints(train_forward) == {"behaviour": Behaviour, "x": Tensor, "state": RunningState | None,
                                    "weight": OptTensor, "bias": OptTensor,
                                    "return": tuple[Tensor, RunningState | None]}
    assert hints(update_running) == {"behaviour": Behaviour, "x": Tensor, "state": RunningState,
                                     "return": RunningState}
    assert hints(eval_forward) == {"behaviour": Behaviour, "x": Tensor, "state": RunningState,
                                   "weight": OptTensor, "bias": OptTensor, "return": Tensor}


# -- Behaviour ----------------------------------------------------------------------------------


def test_behaviour_defaults_are_pytorchs_convention() -> None:
    b = Behaviour(1, {4: (0, 2, 3)})
    assert b.channel_axis == 1 and b.reduction_axes == {4: (0, 2, 3)}
    assert b.norm_variance == "biased"
    assert b.eps == 1e-5
    assert b.eps_placement == "inside-sqrt"
    assert b.new_weight == 0.1
    assert b.running_var_estimator == "unbiased"
    assert b.train_uses == "batch"
    assert b.running_init == (0.0, 1.0)


def test_behaviour_is_frozen() -> None:
    b = Behaviour(1, FIRST)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.eps = 1.0  # type: ignore[misc]


def test_but_changes_only_the_named_fields() -> None:
    b = Behaviour(1, FIRST)
    c = b.but(eps=0.5, train_uses="running")
    assert (c.eps, c.train_uses) == (0.5, "running")
    assert (b.eps, b.train_uses) == (1e-5, "batch")
    assert dataclasses.replace(c, eps=b.eps, train_uses=b.train_uses) == b


def test_from_spec_copies_every_field_of_a_new_weight_spec() -> None:
    spec = load_spec("pytorch")
    b = Behaviour.from_spec(spec)
    assert b == Behaviour(channel_axis=1, reduction_axes=FIRST, norm_variance="biased", eps=1e-5,
                          eps_placement="inside-sqrt", new_weight=0.1, running_var_estimator="unbiased",
                          train_uses="batch", running_init=(0.0, 1.0))
    assert Behaviour.from_spec(spec, 0.3).new_weight == 0.3
    assert Behaviour.from_spec(spec, 0.0).new_weight == 0.0  # an explicit 0 is not "the default"
    assert Behaviour.from_spec(spec, 1.0).new_weight == 1.0


def test_from_spec_converts_an_old_weight_momentum() -> None:
    spec = load_spec("flax")
    b = Behaviour.from_spec(spec)
    assert b.channel_axis == -1 and dict(b.reduction_axes) == LAST
    assert b.running_var_estimator == "biased" and b.norm_variance == "biased"
    assert b.new_weight == pytest.approx(0.01, abs=1e-12)
    assert Behaviour.from_spec(spec, 0.75).new_weight == 0.25
    assert Behaviour.from_spec(spec, 0.0).new_weight == 1.0


def test_from_spec_carries_eps_placement_train_uses_and_running_init() -> None:
    spec = dataclasses.replace(load_spec("frozen"), eps=0.25, eps_placement="outside-sqrt",
                               running_mean_init=0.5, running_var_init=4.0)
    b = Behaviour.from_spec(spec)
    assert (b.eps, b.eps_placement, b.train_uses, b.running_init) == (0.25, "outside-sqrt", "running", (0.5, 4.0))


# -- RunningState -------------------------------------------------------------------------------


def test_running_state_starts_at_step_zero_and_clones_deeply() -> None:
    state = RunningState(vec(1.0, 2.0), vec(3.0, 4.0))
    assert state.steps == 0
    state.steps = 5
    copy = state.clone()
    assert copy.steps == 5 and copy is not state
    copy.mean += 1
    copy.var *= 2
    close(state.mean, vec(1.0, 2.0))
    close(state.var, vec(3.0, 4.0))
    close(copy.mean, vec(2.0, 3.0))
    close(copy.var, vec(6.0, 8.0))


# -- helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", RANKS)
def test_channel_view_puts_the_channels_on_the_channel_axis(rank: int) -> None:
    values = vec(1.0, 2.0, 3.0)
    first = channel_view(values, rank, 1)
    last = channel_view(values, rank, -1)
    assert first.shape == tuple(C if i == 1 else 1 for i in range(rank))
    assert last.shape == tuple(C if i == rank - 1 else 1 for i in range(rank))
    assert first.reshape(-1).tolist() == [1.0, 2.0, 3.0] == last.reshape(-1).tolist()
    assert channel_view(values, rank, 0).shape == (C,) + (1,) * (rank - 1)
    if rank >= 3:
        assert channel_view(values, rank, -2).shape == tuple(C if i == rank - 2 else 1 for i in range(rank))


def test_count_over_multiplies_the_sizes_of_the_axes() -> None:
    x = torch.zeros(2, 3, 5, 7)
    assert count_over(x, (0, 2, 3)) == 70
    assert count_over(x, (1,)) == 3
    assert count_over(x, (0, 1, 2)) == 30
    assert count_over(x, ()) == 1


def test_squeeze_channels_flattens_a_broadcastable_statistic() -> None:
    t = vec(1.0, 2.0, 3.0).reshape(1, 3, 1, 1)
    out = squeeze_channels(t)
    assert out.shape == (3,) and out.tolist() == [1.0, 2.0, 3.0]


# -- batch statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize(("rank", "axis"), list(itertools.product(RANKS, (1, -1))))
def test_batch_statistics_match_the_hand_formula(rank: int, axis: int) -> None:
    x = sample(rank, axis)
    axes = (FIRST if axis == 1 else LAST)[rank]
    mean_h, biased_h, unbiased_h, n = hand_stats(x, axis)
    assert count_over(x, axes) == n
    for estimator, var_h in (("biased", biased_h), ("unbiased", unbiased_h)):
        mean, var = batch_statistics(x, axes, fresh(estimator))
        kept = tuple(s if i not in axes else 1 for i, s in enumerate(x.shape))
        assert mean.shape == kept and var.shape == kept
        close(mean.reshape(-1), mean_h)
        close(var.reshape(-1), var_h)


@pytest.mark.parametrize("rank", RANKS)
def test_batch_statistics_agree_with_torch(rank: int) -> None:
    x = sample(rank)
    axes = FIRST[rank]
    mean, var = batch_statistics(x, axes, "unbiased")
    close(mean, x.mean(dim=axes, keepdim=True))
    close(var, x.var(dim=axes, keepdim=True, unbiased=True))
    _, var_b = batch_statistics(x, axes, "biased")
    close(var_b, x.var(dim=axes, keepdim=True, unbiased=False))


def test_unbiased_variance_of_two_values_divides_by_one() -> None:
    x = vec(1.0, 4.0, 10.0, 20.0).reshape(2, 2)  # channel 0: 1, 10; channel 1: 4, 20
    mean, var = batch_statistics(x, (0,), "unbiased")
    assert mean.tolist() == [[5.5, 12.0]]
    assert var.tolist() == [[40.5, 128.0]]
    _, var_b = batch_statistics(x, (0,), "biased")
    assert var_b.tolist() == [[20.25, 64.0]]


def test_a_single_value_has_zero_variance_under_both_estimators() -> None:
    x = vec(3.0, -2.0).reshape(1, 2)
    for estimator in ("biased", "unbiased", fresh("unbiased")):
        mean, var = batch_statistics(x, (0,), estimator)
        assert mean.tolist() == [[3.0, -2.0]]
        assert var.tolist() == [[0.0, 0.0]]


def test_batch_statistics_are_differentiable() -> None:
    x = sample(3).requires_grad_()
    mean, var = batch_statistics(x, FIRST[3], "biased")
    (mean.sum() + var.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# -- normalize and affine -----------------------------------------------------------------------


def test_normalize_places_eps_inside_or_outside_the_sqrt() -> None:
    x = vec(5.0, -1.0, 2.0)
    mean = vec(1.0, 1.0, 1.0)
    var = vec(4.0, 9.0, 0.0)
    eps = 0.5
    inside = vec(4.0 / 4.5 ** 0.5, -2.0 / 9.5 ** 0.5, 1.0 / 0.5 ** 0.5)
    outside = vec(4.0 / 2.5, -2.0 / 3.5, 1.0 / 0.5)
    close(normalize(x, mean, var, eps, "inside-sqrt"), inside)
    close(normalize(x, mean, var, eps, fresh("inside-sqrt")), inside)
    close(normalize(x, mean, var, eps, "outside-sqrt"), outside)
    close(normalize(x, mean, var, eps, fresh("outside-sqrt")), outside)


def test_affine_scales_then_shifts_along_the_channel_axis() -> None:
    x = torch.ones(2, 3, 2, dtype=torch.float64)
    w, b = vec(2.0, 3.0, 4.0), vec(-1.0, 0.5, 10.0)
    assert affine(x, None, None, 1) is x
    close(affine(x, w, None, 1)[0, :, 0], w)
    close(affine(x, None, b, 1)[0, :, 0], 1.0 + b)
    close(affine(x, w, b, 1)[1, :, 1], w + b)
    y = torch.ones(2, 2, 3, dtype=torch.float64) * 2.0
    close(affine(y, w, b, -1)[1, 1, :], 2.0 * w + b)
    close(affine(y, w, None, -1)[0, 0, :], 2.0 * w)
    close(affine(y, None, b, -1)[0, 1, :], 2.0 + b)


# -- training forward ---------------------------------------------------------------------------


def params(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(C, generator=g, dtype=torch.float64) + 0.5,
            torch.randn(C, generator=g, dtype=torch.float64))


def start_state() -> RunningState:
    return RunningState(vec(0.5, -1.0, 2.0), vec(1.5, 0.25, 3.0))


@pytest.mark.parametrize(("rank", "with_affine"), list(itertools.product(RANKS, (False, True))))
def test_train_forward_matches_torch_batch_norm(rank: int, with_affine: bool) -> None:
    x = sample(rank)
    w, b = params() if with_affine else (None, None)
    behaviour = Behaviour.from_spec(load_spec("pytorch"))
    state = start_state()
    rm, rv = state.mean.clone(), state.var.clone()
    expected = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    y, new = train_forward(behaviour, x, state, w, b)
    close(y, expected)
    assert new is not None and new.steps == 1
    close(new.mean, rm)
    close(new.var, rv)
    # The given state is not updated in place.
    close(state.mean, vec(0.5, -1.0, 2.0))
    assert state.steps == 0
    y_untracked, none = train_forward(behaviour, x, None, w, b)
    assert none is None
    close(y_untracked, expected)


@pytest.mark.parametrize(("rank", "placement", "estimator", "axis"),
                         list(itertools.product(RANKS, ("inside-sqrt", "outside-sqrt"), ("biased", "unbiased"),
                                                (1, -1))))
def test_train_forward_matches_the_hand_formula(rank: int, placement: str, estimator: str, axis: int) -> None:
    x = sample(rank, axis, seed=7)
    w, b = params(2)
    eps = 0.3  # large, so its placement shows
    behaviour = Behaviour(axis, FIRST if axis == 1 else LAST, norm_variance=fresh(estimator), eps=eps,
                          eps_placement=fresh(placement), new_weight=0.25, running_var_estimator=fresh(estimator))
    mean, biased, unbiased, _ = hand_stats(x, axis)
    var = unbiased if estimator == "unbiased" else biased
    ax = axis % x.dim()
    centred = x - per_channel(mean, x, ax)
    if placement == "inside-sqrt":
        x_hat = centred / per_channel((var + eps).sqrt(), x, ax)
    else:
        x_hat = centred / per_channel(var.sqrt() + eps, x, ax)
    state = start_state()
    y, new = train_forward(behaviour, x, state, w, b)
    close(y, x_hat * per_channel(w, x, ax) + per_channel(b, x, ax))
    assert new is not None and new.steps == 1
    close(new.mean, 0.75 * state.mean + 0.25 * mean)
    close(new.var, 0.75 * state.var + 0.25 * var)
    y_plain, _ = train_forward(behaviour, x, None)
    close(y_plain, x_hat)


def test_train_forward_normalizes_with_the_norm_estimator_but_tracks_with_the_running_one() -> None:
    x = sample(4)
    mean, biased, unbiased, _ = hand_stats(x, 1)
    behaviour = Behaviour(1, FIRST, norm_variance="unbiased", running_var_estimator="biased", eps=0.0,
                          new_weight=1.0)
    y, new = train_forward(behaviour, x, start_state())
    close(y, (x - per_channel(mean, x, 1)) / per_channel(unbiased.sqrt(), x, 1))
    assert new is not None
    close(new.mean, mean)
    close(new.var, biased)


def test_train_forward_with_running_statistics_uses_the_given_state() -> None:
    x = sample(3, seed=3)
    state = start_state()
    behaviour = Behaviour(1, FIRST, train_uses=fresh("running"), eps=0.5, new_weight=0.5,
                          running_init=(7.0, 9.0))
    y, new = train_forward(behaviour, x, state)
    expected = (x - per_channel(state.mean, x, 1)) / per_channel((state.var + 0.5).sqrt(), x, 1)
    close(y, expected)
    # The running statistics still move with the batch.
    mean, _, unbiased, _ = hand_stats(x, 1)
    assert new is not None and new.steps == 1
    close(new.mean, 0.5 * state.mean + 0.5 * mean)
    close(new.var, 0.5 * state.var + 0.5 * unbiased)


@pytest.mark.parametrize("axis", [1, -1])
def test_train_forward_with_running_statistics_and_no_state_uses_a_fresh_modules(axis: int) -> None:
    x = sample(4, axis, seed=4)
    behaviour = Behaviour(axis, FIRST if axis == 1 else LAST, train_uses="running", eps=0.5,
                          running_init=(0.5, 4.0))
    w, b = params(3)
    y, new = train_forward(behaviour, x, None, w, b)
    ax = axis % x.dim()
    assert new is None
    close(y, (x - 0.5) / 4.5 ** 0.5 * per_channel(w, x, ax) + per_channel(b, x, ax))
    assert y.dtype == torch.float64


def test_train_forward_is_differentiable_and_tracks_detached_statistics() -> None:
    x = sample(4).requires_grad_()
    w, b = (p.requires_grad_() for p in params())
    y, new = train_forward(Behaviour(1, FIRST), x, start_state(), w, b)
    (y * torch.arange(y.numel(), dtype=torch.float64).reshape(y.shape)).sum().backward()
    assert x.grad is not None and w.grad is not None and b.grad is not None
    assert new is not None and not new.mean.requires_grad and not new.var.requires_grad


# -- running update -----------------------------------------------------------------------------


def test_update_running_blends_with_the_new_weight() -> None:
    x = vec(1.0, 2.0, 3.0, 6.0).reshape(2, 2)  # channel means 2, 4; biased vars 1, 4; unbiased 2, 8
    state = RunningState(vec(10.0, 20.0), vec(1.0, 1.0), steps=4)
    new = update_running(Behaviour(1, FIRST, new_weight=0.25), x, state)
    assert new.steps == 5
    assert new.mean.tolist() == [0.75 * 10.0 + 0.25 * 2.0, 0.75 * 20.0 + 0.25 * 4.0]
    assert new.var.tolist() == [0.75 + 0.25 * 2.0, 0.75 + 0.25 * 8.0]
    biased = update_running(Behaviour(1, FIRST, new_weight=0.25, running_var_estimator="biased"), x, state)
    assert biased.var.tolist() == [0.75 + 0.25 * 1.0, 0.75 + 0.25 * 4.0]
    # The old state is left alone.
    assert state.steps == 4 and state.mean.tolist() == [10.0, 20.0]


def test_update_running_with_weight_zero_or_one() -> None:
    x = vec(1.0, 2.0, 3.0, 6.0).reshape(2, 2)
    state = RunningState(vec(10.0, 20.0), vec(5.0, 7.0))
    kept = update_running(Behaviour(1, FIRST, new_weight=0.0), x, state)
    assert kept.mean.tolist() == [10.0, 20.0] and kept.var.tolist() == [5.0, 7.0] and kept.steps == 1
    replaced = update_running(Behaviour(1, FIRST, new_weight=1.0), x, state)
    assert replaced.mean.tolist() == [2.0, 4.0] and replaced.var.tolist() == [2.0, 8.0]


def test_update_running_without_momentum_is_a_cumulative_average() -> None:
    behaviour = Behaviour(1, FIRST, new_weight=None)
    batches = [vec(1.0, 2.0, 3.0, 6.0).reshape(2, 2), vec(0.0, 0.0, 4.0, 4.0).reshape(2, 2),
               vec(-5.0, 1.0, 1.0, 1.0).reshape(2, 2)]
    state = RunningState(vec(100.0, 100.0), vec(100.0, 100.0))
    means, vars_ = [], []
    for i, x in enumerate(batches, start=1):
        state = update_running(behaviour, x, state)
        m, v = batch_statistics(x, (0,), "unbiased")
        means.append(m.reshape(-1))
        vars_.append(v.reshape(-1))
        assert state.steps == i
        close(state.mean, sum(means) / i)  # the initial statistics weigh nothing
        close(state.var, sum(vars_) / i)


def test_cumulative_average_continues_from_the_steps_already_taken() -> None:
    behaviour = Behaviour(1, FIRST, new_weight=None)
    state = RunningState(vec(3.0, 6.0), vec(1.0, 2.0), steps=2)  # the average of two batches so far
    x = vec(6.0, 0.0, 6.0, 0.0).reshape(2, 2)  # means 6, 0; unbiased vars 0, 0
    new = update_running(behaviour, x, state)
    assert new.steps == 3
    close(new.mean, vec(4.0, 4.0))
    close(new.var, vec(2.0 / 3.0, 4.0 / 3.0))


@pytest.mark.parametrize("rank", RANKS)
def test_update_running_matches_torch_for_every_rank(rank: int) -> None:
    x = sample(rank, seed=9)
    rm, rv = start_state().mean.clone(), start_state().var.clone()
    F.batch_norm(x, rm, rv, training=True, momentum=0.3)
    new = update_running(Behaviour(1, FIRST, new_weight=0.3), x, start_state())
    close(new.mean, rm)
    close(new.var, rv)


@pytest.mark.parametrize("axis", [1, -1])
def test_update_running_reduces_over_the_layouts_axes(axis: int) -> None:
    x = sample(5, axis, seed=5)
    mean, biased, _, _ = hand_stats(x, axis)
    new = update_running(Behaviour(axis, FIRST if axis == 1 else LAST, new_weight=1.0,
                                   running_var_estimator="biased"), x, start_state())
    assert new.mean.shape == (C,) and new.var.shape == (C,)
    close(new.mean, mean)
    close(new.var, biased)


# -- eval forward -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rank", "with_affine"), list(itertools.product(RANKS, (False, True))))
def test_eval_forward_matches_torch_batch_norm(rank: int, with_affine: bool) -> None:
    x = sample(rank, seed=11)
    w, b = params(4) if with_affine else (None, None)
    state = start_state()
    expected = F.batch_norm(x, state.mean.clone(), state.var.clone(), w, b, training=False, eps=1e-3)
    close(eval_forward(Behaviour(1, FIRST, eps=1e-3), x, state, w, b), expected)


@pytest.mark.parametrize(("placement", "axis"), list(itertools.product(("inside-sqrt", "outside-sqrt"), (1, -1))))
def test_eval_forward_matches_the_hand_formula(placement: str, axis: int) -> None:
    x = sample(4, axis, seed=12)
    w, b = params(5)
    state = start_state()
    ax = axis % x.dim()
    std = (state.var + 0.2).sqrt() if placement == "inside-sqrt" else state.var.sqrt() + 0.2
    expected = (x - per_channel(state.mean, x, ax)) / per_channel(std, x, ax) * per_channel(w, x, ax) \
        + per_channel(b, x, ax)
    behaviour = Behaviour(axis, FIRST if axis == 1 else LAST, eps=0.2, eps_placement=fresh(placement))
    close(eval_forward(behaviour, x, state, w, b), expected)
    close(eval_forward(behaviour, x, state), (x - per_channel(state.mean, x, ax)) / per_channel(std, x, ax))
    # Evaluation does not depend on the batch: one sample gives the same rows.
    close(eval_forward(behaviour, x[:1], state, w, b), expected[:1])
