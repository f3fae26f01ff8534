"""The benchmark's results as plain data: what the table, the reports and the JSON show."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .bandwidth import Ceiling, fraction, gbps
from .compare import Change, key, medians
from .conform import Conformance
from .memory import Growth


@dataclass(frozen=True)
class Timing:
    """One pass at one shape: the target against torch."""

    shape: tuple[int, ...]
    pass_name: str
    bytes: int
    target_s: float  # medians
    torch_s: float
    ceiling_gbps: float
    target_min_s: float = 0.0  # fastest rounds
    torch_min_s: float = 0.0

    @property
    def ratio(self) -> float:
        """target / torch of the medians: 2.0 means the target takes twice as long."""
        return self.target_s / self.torch_s

    @property
    def min_ratio(self) -> float | None:
        """target / torch of the fastest rounds: steadier than the medians on a loaded machine."""
        return self.target_min_s / self.torch_min_s if self.target_min_s and self.torch_min_s else None

    def gbps(self, role: str) -> float:
        return gbps(self.bytes, self.target_s if role == "target" else self.torch_s)

    def fraction(self, role: str) -> float | None:
        return fraction(self.gbps(role), Ceiling(self.ceiling_gbps, ""))


@dataclass(frozen=True)
class Memory:
    """Peak bytes of one forward+backward at one shape."""

    shape: tuple[int, ...]
    target_bytes: int
    torch_bytes: int


@dataclass
class Report:
    target: str
    reference: str
    device: str
    dtype: str
    threads: int
    ceiling: Ceiling
    conformance: Conformance
    memory_method: str
    timings: list[Timing] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    growth: dict[str, Growth] = field(default_factory=dict)  # role -> growth
    changes: list[Change] = field(default_factory=list)
    threshold: float | None = None
    slower: list[Change] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The part of the report that pytest-benchmark's JSON does not already hold."""
        return {
            "target": self.target, "reference": self.reference, "device": self.device, "dtype": self.dtype,
            "threads": self.threads,
            "ceiling": asdict(self.ceiling), "conformance": asdict(self.conformance),
            "memory_method": self.memory_method,
            "memory": [asdict(m) for m in self.memory],
            "growth": {role: asdict(g) for role, g in self.growth.items()},
        }


def timings_from(run: dict[str, Any], ceiling: Ceiling) -> list[Timing]:
    """Pair the target's best median with torch's for each pass and shape, in run order."""
    best, fastest = medians(run), medians(run, "min")
    sizes = {key(b): int(b["extra_info"]["bytes"]) for b in run["benchmarks"] if key(b) is not None}
    timings = []
    for k, target_s in best.items():
        role, pass_name, shape, dtype, device = k
        torch_s = best.get(("torch", pass_name, shape, dtype, device))
        if role == "target" and torch_s is not None:
            torch_key = ("torch", pass_name, shape, dtype, device)
            timings.append(Timing(shape, pass_name, sizes[k], target_s, torch_s, ceiling.gbps,
                                  fastest.get(k, 0.0), fastest.get(torch_key, 0.0)))
    return timings
