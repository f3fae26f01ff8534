"""The run context: what every probe needs to drive the user's module safely."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from bnconform import progress
from bnconform.construct import DEFAULT, Unsupported
from bnconform.errors import UserCodeError
from bnconform.reference import Behaviour
from bnconform.spec import Spec

T = TypeVar("T")


@dataclass(frozen=True)
class RunSettings:
    seed: int = 0
    device: str = "cpu"
    profile: str = "default"
    timeout_s: float = 10.0
    num_features: int = 5  # not 3: RGB-shaped constants hide in real code
    devices: tuple[str, ...] = ("cpu",)  # every device the run covers (device checks use the others)


class RunContext:
    """Holds the spec, the builder and cached probe results for one target on one device."""

    def __init__(self, spec: Spec, builder: Any, settings: RunSettings) -> None:
        self.spec = spec
        self.builder = builder
        self.settings = settings
        self.dtype: torch.dtype = torch.float64
        # Ranks to try: every rank the spec defines, or those pinned (--ranks, a rank argument).
        self.ranks: tuple[int, ...] = tuple(builder.pinned_ranks() or spec.ranks)
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._hangs = 0
        self._sizes = probe_sizes(settings.seed, settings.num_features)

    @property
    def channels(self) -> int:
        return self.settings.num_features

    @property
    def domain(self) -> Any:
        """What the class accepts (probes.domain.Domain); discovered on first use."""
        from bnconform.probes.domain import discover_domain

        return self.probe(discover_domain)

    def known_domain(self) -> Any:
        """The domain if it was discovered without error, else None (never runs user code)."""
        from bnconform.probes.domain import discover_domain

        kind, value = self._cache.get((discover_domain, ()), ("missing", None))
        return value if kind == "ok" else None

    @property
    def primary_rank(self) -> int:
        """The rank probes use: the preferred accepted rank once the domain is known."""
        domain = self.known_domain()
        return domain.probe_rank if domain is not None else preferred_rank(self.ranks)

    def shape_sizes(self) -> dict[str, int]:
        """N, L, D, H, W of probe inputs: pairwise distinct and distinct from C (PROBING.md 2)."""
        domain = self.known_domain()
        return self._sizes | ({"N": domain.batch} if domain is not None else {})

    def behaviour(self) -> Behaviour:
        """The spec's behaviour for a module built as probes build it by default, so a momentum
        pinned with --init is what the reference expects (the user chose it; not a defect)."""
        pinned = self.builder.pinned("momentum")
        if pinned is DEFAULT:
            return Behaviour.from_spec(self.spec)
        if pinned is None:
            return Behaviour.from_spec(self.spec).but(new_weight=None)
        return Behaviour.from_spec(self.spec, float(pinned))

    @property
    def devices(self) -> tuple[str, ...]:
        return self.settings.devices

    @property
    def device(self) -> torch.device:
        return torch.device(self.settings.device)

    def probe(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(self, *args)` once per context; a failure is cached and raised again."""
        key = (fn, args)
        if key not in self._cache:
            try:
                self._cache[key] = ("ok", fn(self, *args))
            except UserCodeError as error:
                self._cache[key] = ("error", error)
        kind, value = self._cache[key]
        if kind == "error":
            raise value
        return value

    def generator(self, salt: int) -> torch.Generator:
        """A deterministic random stream per probe, so probes do not depend on their order."""
        return torch.Generator().manual_seed((self.settings.seed * 1_000_003 + salt) % 2**63)

    fence_state: Any = None  # the torch state every user call starts in (fence.State), set on first call

    def guarded(self, what: str, fn: Callable[..., T], *args: Any, grad: bool = True) -> T:
        """Call user code in the main thread, fenced; exceptions become UserCodeError.

        No timeout here: a hung thread cannot be killed. The supervisor watches the "call"
        event and kills and replaces the whole worker (bnconform.supervise); a call that
        killed or hung a worker before fails fast in its replacement instead of running again.
        Global torch state is restored around the call, and an input the call wrote into is
        recorded (input-modified) and put back, so no later probe reads modified values.
        """
        from bnconform import fence
        from bnconform.supervise.session import CURRENT

        earlier = CURRENT.fatal_for(what)
        if earlier is not None:
            # The same words as the first report, so the one crash or hang is reported once.
            raise UserCodeError(earlier["what"], earlier["detail"], earlier["kind"])
        if self.fence_state is None:
            self.fence_state = fence.snapshot()
        progress.emit("call", what=what, timeout_s=self.settings.timeout_s)
        try:
            with fence.fenced(self.fence_state), fence.watching_inputs() as watch:
                try:
                    with torch.set_grad_enabled(grad):
                        value = fn(*args)
                    error: BaseException | None = None
                except BaseException as raised:  # noqa: BLE001 - user code may raise anything
                    error, value = raised, None
                self.modified_inputs.extend((what, change) for change in watch.writes)
        finally:
            progress.emit("call-done")
        if isinstance(error, UserCodeError):  # raised by our own wrapper (e.g. Builder.build)
            raise UserCodeError(what, error.detail, error.kind)
        if error is not None:
            raise UserCodeError(what, safe_describe(error))
        return value  # type: ignore[return-value]

    @property
    def modified_inputs(self) -> list[tuple[str, str]]:
        """(call, what changed) for every call that wrote into its input (input-modified)."""
        return self.__dict__.setdefault("_modified_inputs", [])

    def build(self, rank: int | None = None, *, channels: int | None = None, **roles: Any) -> torch.nn.Module:
        """A fresh module for `rank` (passed when the class selects its rank), on the device."""
        rank = self.primary_rank if rank is None else rank
        channels = self.channels if channels is None else channels
        for role in roles:
            if not self.builder.accepts(role):
                raise Unsupported(role)
        if self.builder.accepts("rank"):
            roles["rank"] = rank
        call = f"constructing {self.builder.describe(channels, **roles)}"
        module = self.guarded(call, lambda: self.builder.build(channels, **roles))
        module = self.guarded("moving the module", lambda: module.to(self.device, self.dtype))
        shape = self.layout_shape(rank, channels=channels)
        return self.guarded("initializing lazy parameters", lambda: materialized(
            module, shape, infers_channels=not self.builder.accepts("num_features"), device=self.device,
            dtype=self.dtype))

    def shape(self, rank: int, batch: int | None = None, *, channels: int | None = None) -> tuple[int, ...]:
        """A small input shape in channels-first order, every size distinct (no size-1 axis:
        axes stay identifiable; no size equal to C: broadcasting mistakes raise or show)."""
        sizes = self.shape_sizes()
        spatial = {2: (), 3: ("L",), 4: ("H", "W"), 5: ("D", "H", "W")}[rank]
        domain = self.known_domain()
        n = sizes["N"] if batch is None else batch if domain is None else domain.batch_near(batch)
        return (n, self.channels if channels is None else channels, *(sizes[a] for a in spatial))

    def layout_shape(self, rank: int, batch: int | None = None, *, channels: int | None = None) -> tuple[int, ...]:
        """`shape` in the spec's layout: the shape the class is given (and a user reads)."""
        first = self.shape(rank, batch, channels=channels)
        return (first[0], *first[2:], first[1]) if self.spec.channel_axis == -1 else first

    def to_layout(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-first tensor -> the spec's layout (channel axis -1 means (N, ..., C))."""
        return x.movedim(1, -1).contiguous() if self.spec.channel_axis == -1 else x

    def input_with_stats(
        self,
        rank: int,
        means: list[float],
        stds: list[float],
        salt: int,
        batch: int | None = None,
        *,
        channels: int | None = None,
    ) -> torch.Tensor:
        """An input whose per-channel mean and biased std are exactly `means` and `stds`."""
        shape = self.shape(rank, batch, channels=channels)
        c = shape[1]
        z = torch.randn(shape, generator=self.generator(salt), dtype=torch.float64)
        axes = tuple(a for a in range(z.dim()) if a != 1)
        z = z - z.mean(dim=axes, keepdim=True)
        z = z / z.pow(2).mean(dim=axes, keepdim=True).sqrt().clamp_min(1e-300)
        view = [1] * z.dim()
        view[1] = c
        x = per_channel(means, c).reshape(view) + per_channel(stds, c).reshape(view) * z
        return self.to_layout(x).to(self.device, self.dtype)

    def values_per_channel(self, rank: int, batch: int | None = None) -> int:
        return math.prod(self.shape(rank, batch)) // self.channels


def per_channel(pattern: list[float], channels: int) -> torch.Tensor:
    """A per-channel value pattern repeated to `channels` values (float64)."""
    return torch.tensor([pattern[i % len(pattern)] for i in range(channels)], dtype=torch.float64)


def materialized(module: torch.nn.Module, shape: tuple[int, ...], *, infers_channels: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Lazy modules learn their size from an input; give them one. torch.nn.LazyBatchNorm2d says so
    (uninitialized parameters); a hand-written one that takes no channel count and registers
    its tensors as None creates them in its first forward, as its users' dry run does: one
    forward of zeros in eval mode without grad, which updates no statistic of a correct class."""
    has_lazy = getattr(module, "has_uninitialized_params", None)
    if callable(has_lazy) and has_lazy():
        param = next(module.parameters(), None)
        module.initialize_parameters(torch.zeros(shape, device=param.device if param is not None else None))
        return module
    if infers_channels and any(t is None for t in (*module._parameters.values(), *module._buffers.values())):
        was_training = module.training
        try:
            with torch.no_grad():
                module.eval()(torch.zeros(shape, device=device, dtype=dtype))
        except Exception:  # noqa: BLE001 - the probes meet this forward again and report what it does
            pass
        finally:
            module.train(was_training)
    return module


LAYOUTS = (  # N, L, D, H, W; rotated by seed so no single size pattern is ever relied on
    {"N": 6, "L": 7, "D": 2, "H": 4, "W": 3},
    {"N": 4, "L": 6, "D": 3, "H": 2, "W": 7},
    {"N": 6, "L": 3, "D": 2, "H": 7, "W": 4},
)
SPARE_SIZES = (8, 9, 11, 12)


def probe_sizes(seed: int, channels: int) -> dict[str, int]:
    """The seed's layout, with any size equal to C replaced by an unused one."""
    sizes = dict(LAYOUTS[seed % len(LAYOUTS)])
    spare = iter(s for s in SPARE_SIZES if s != channels and s not in sizes.values())
    return {axis: next(spare) if size == channels else size for axis, size in sizes.items()}


def preferred_rank(ranks: tuple[int, ...]) -> int:
    for rank in (4, 3, 2, 5):
        if rank in ranks:
            return rank
    return ranks[0]


def describe_exception(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def safe_describe(error: BaseException) -> str:
    """describe_exception, but an exception whose __str__ raises (even SystemExit) is still named."""
    try:
        return describe_exception(error)
    except BaseException:  # noqa: BLE001 - user __str__ may raise anything
        return f"{type(error).__name__}: <str() of the exception raised>"
