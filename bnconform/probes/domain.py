"""Input-domain discovery: which ranks, batch sizes and channel counts the class accepts.

Asked by calling, never read from the class name (PROBING.md section 1): a subclass of
torch.nn.BatchNorm2d, a functools.partial and a factory behave like their base. Every other
probe then runs inside the discovered domain; the limits are findings of their own
(input-rank-unsupported, batch-size-constraint) that block nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bnconform.construct import DEFAULT
from bnconform.context import RunContext, preferred_rank
from bnconform.errors import UserCodeError
from bnconform.probes.common import forward

MEANS, STDS = [0.5, -1.0, 2.0], [1.0, 2.0, 0.5]
BATCH_CANDIDATES = (1, 2, 3, 4, 6, 7, 8, 9)  # odd, even and prime sizes
WIDE_CHANNELS = 11  # a second, larger channel count: C is honoured, not hard-coded
NARROW_CHANNELS = 1
RGB_CHANNELS = 3  # the channel count hard-coded constants assume


@dataclass(frozen=True)
class Domain:
    """What a training-mode forward accepts, found by calling it."""

    ranks: tuple[int, ...]  # accepted ranks
    rejected: dict[int, str]  # rank -> why it was rejected
    probe_rank: int
    batch: int  # the batch size every probe uses
    batch_rejected: dict[int, str] = field(default_factory=dict)  # N -> why (at probe_rank)
    batch_constraint: str = ""  # "" or e.g. "training needs N divisible by 2"
    channels: int = 5
    channel_errors: dict[int, str] = field(default_factory=dict)  # other C -> why it failed
    dtype: str = "float64"
    float64_error: str = ""  # why float64 was not used, "" when it was
    batch_multiple: int = 1  # training needs N divisible by this
    batch_minimum: int = 1  # training needs N >= this

    def batch_near(self, n: int) -> int:
        """The nearest batch size >= n that the class trains on (a probe's own choice of N is
        moved into the domain, so a constraint stays one finding and never becomes a crash)."""
        n = max(n, self.batch_minimum)
        n += -n % self.batch_multiple
        return self.batch if n in self.batch_rejected else n

    @property
    def channels_honoured(self) -> bool:
        return not self.channel_errors

    def to_json(self) -> dict[str, object]:
        return {
            "ranks": list(self.ranks),
            "rejected": {str(r): why for r, why in self.rejected.items()},
            "probe_rank": self.probe_rank,
            "batch": {
                "probe": self.batch,
                "constraint": self.batch_constraint,
                "rejected": {str(n): why for n, why in self.batch_rejected.items()},
            },
            "channels": {
                "probe": self.channels,
                "honoured": self.channels_honoured,
                "rejected": {str(c): why for c, why in self.channel_errors.items()},
            },
            "dtype": self.dtype,
        }

    def summary(self) -> str:
        parts = [f"accepts ranks {list(self.ranks)}"]
        if self.batch_constraint:
            parts.append(self.batch_constraint)
        if self.channel_errors:
            parts.append(f"fails with C in {sorted(self.channel_errors)}")
        return "; ".join(parts)


def discover_domain(ctx: RunContext) -> Domain:
    """Ranks first (float64, else float32), then batch sizes and channel counts at the probe rank."""
    first_error: UserCodeError | None = None
    for dtype in (torch.float64, torch.float32):
        ctx.dtype = dtype
        accepted, rejected = rank_scan(ctx)
        if accepted:
            rank = preferred_rank(tuple(accepted))
            batch = accepted[rank]
            batch_rejected = batch_scan(ctx, rank)
            tried = batch_sizes_tried(rank)
            multiple, minimum = rule(batch_rejected, tried)
            return Domain(
                ranks=tuple(sorted(accepted)),
                rejected={r: str(error) for r, error in rejected.items()},
                probe_rank=rank,
                batch=batch,
                batch_rejected=batch_rejected,
                batch_constraint=constraint(batch_rejected, tried),
                batch_multiple=multiple,
                batch_minimum=minimum,
                channels=ctx.channels,
                channel_errors=channel_scan(ctx, rank, batch),
                dtype=str(dtype).removeprefix("torch."),
                float64_error="" if first_error is None else str(first_error),
            )
        first_error = first_error or first_rejection(ctx, rejected)
    ctx.dtype = torch.float64
    assert first_error is not None
    raise explain_channels(ctx, first_error)


def rank_scan(ctx: RunContext) -> tuple[dict[int, int], dict[int, UserCodeError]]:
    """rank -> an accepted batch size, and rank -> the error of the last batch size tried."""
    accepted: dict[int, int] = {}
    rejected: dict[int, UserCodeError] = {}
    for rank in ctx.ranks:
        error: UserCodeError | None = None
        for batch in batches_to_try(ctx):
            error = try_forward(ctx, rank, batch)
            if error is None:
                accepted[rank] = batch
                break
        if error is not None:
            rejected[rank] = error
    return accepted, rejected


def batches_to_try(ctx: RunContext) -> tuple[int, ...]:
    """The layout's batch first; then others, so a batch-size constraint is not a rank rejection."""
    default = ctx.shape_sizes()["N"]
    others = tuple(n for n in (4, 6, 8, 3) if n != default and n != ctx.channels)
    return (default, *others[:2])


def try_forward(ctx: RunContext, rank: int, batch: int, channels: int | None = None) -> UserCodeError | None:
    """None when a training forward on this input returns a finite tensor of its shape, else the error."""
    try:
        x = ctx.input_with_stats(rank, MEANS, STDS, salt=10 + rank, batch=batch, channels=channels)
        module = ctx.build(rank, channels=channels)
        require_finite(forward(ctx, module, x))  # forward() has already checked type, device and shape
    except UserCodeError as error:
        return error
    return None


def require_finite(y: torch.Tensor) -> None:
    if not torch.isfinite(y).all():
        raise UserCodeError("train-mode forward", "returned NaN or inf for a well-conditioned input", "nan")


def first_rejection(ctx: RunContext, rejected: dict[int, UserCodeError]) -> UserCodeError:
    rank = preferred_rank(tuple(rejected)) if rejected else preferred_rank(ctx.ranks)
    error = rejected.get(rank) or UserCodeError("train-mode forward", "no rank to try", "raised")
    x_shape = ctx.layout_shape(rank)
    return UserCodeError(f"{error.what} on input {x_shape}", error.detail, error.kind)


def explain_channels(ctx: RunContext, error: UserCodeError) -> UserCodeError:
    """When nothing runs with the probe's C but everything runs with C=3, say a 3 is hard-coded.
    A pinned num_features keeps the module at its width: the 3-channel input then runs only on
    a class that ignores the width it was given."""
    if ctx.channels == RGB_CHANNELS:
        return error
    rank = preferred_rank(ctx.ranks)
    ctx.dtype = torch.float64
    if try_forward(ctx, rank, ctx.shape_sizes()["N"], channels=RGB_CHANNELS) is not None:
        return error
    detail = (
        f"{error.detail}; with {RGB_CHANNELS} channels instead of {ctx.channels} it runs:"
        f" the channel count {RGB_CHANNELS} is hard-coded somewhere"
    )
    return UserCodeError(error.what, detail, error.kind)


def batch_sizes_tried(rank: int) -> tuple[int, ...]:
    """N=1 only where it is not batch-of-one: one value per channel is batch-size-one's question."""
    return tuple(n for n in BATCH_CANDIDATES if not (n == 1 and rank == 2))


def batch_scan(ctx: RunContext, rank: int) -> dict[int, str]:
    """N -> why training rejected it, at the probe rank."""
    rejected = {}
    for batch in batch_sizes_tried(rank):
        error = try_forward(ctx, rank, batch)
        if error is not None:
            rejected[batch] = str(error)
    return rejected


def rule(rejected: dict[int, str], tried: tuple[int, ...] = BATCH_CANDIDATES) -> tuple[int, int]:
    """(multiple, minimum): the simplest rule separating the accepted from the rejected batch
    sizes among those tried, (1, 1) when there is none or none fits."""
    accepted = set(tried) - set(rejected)
    if not rejected or not accepted:
        return 1, 1
    for k in (2, 3, 4, 8):
        if all(n % k == 0 for n in accepted) and all(n % k for n in rejected):
            return k, 1
    if max(rejected) < min(accepted):
        return 1, min(accepted)
    return 1, 1


def constraint(rejected: dict[int, str], tried: tuple[int, ...] = BATCH_CANDIDATES) -> str:
    """The rule in words ("" when every batch size trains)."""
    if not rejected:
        return ""
    if not set(tried) - set(rejected):
        return f"training rejects every batch size tried ({sorted(tried)})"
    multiple, minimum = rule(rejected, tried)
    if multiple > 1:
        return f"training needs N divisible by {multiple}"
    if minimum > 1:
        return f"training needs N >= {minimum}"
    return f"training rejects N in {sorted(rejected)}"


def channel_scan(ctx: RunContext, rank: int, batch: int) -> dict[int, str]:
    """C -> why a module built for C channels failed: one narrow and one wide channel count."""
    if ctx.builder.pinned("num_features") is not DEFAULT or not ctx.builder.accepts("num_features"):
        return {}  # the user pinned C, or no argument takes it: other widths are not ours to try
    errors = {}
    for channels in (NARROW_CHANNELS, WIDE_CHANNELS):
        error = try_forward(ctx, rank, batch, channels=channels)
        if error is not None:
            errors[channels] = str(error)
    return errors
