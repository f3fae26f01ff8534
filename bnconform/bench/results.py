"""The benchmark's results as plain data: what the table, the reports and the JSON show."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .bandwidth import Ceiling, fraction, gbps
from .compare import Change
from .conform import Conformance
from .memory import Growth


@dataclass(frozen=True)
class Timing:
    """One pass at one shape: the target against torch."""

    shape: tuple[int, ...]
    pass_name: str
    bytes: int
    target_s: float
    torch_s: float
    ceiling_gbps: float

    @property
    def ratio(self) -> float:
        """target / torch: 2.0 means the target takes twice as long."""
        return self.target_s / self.torch_s

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
    """Pair each target benchmark with torch's of the same pass and shape, in run order."""
    by_key: dict[tuple[str, tuple[int, ...]], dict[str, dict[str, Any]]] = {}
    for benchmark in run["benchmarks"]:
        info = benchmark["extra_info"]
        by_key.setdefault((info["pass"], tuple(info["shape"])), {})[info["role"]] = benchmark
    timings = []
    for (pass_name, shape), pair in by_key.items():
        if {"target", "torch"} <= pair.keys():
            timings.append(Timing(shape, pass_name, int(pair["target"]["extra_info"]["bytes"]),
                                  float(pair["target"]["stats"]["median"]),
                                  float(pair["torch"]["stats"]["median"]), ceiling.gbps))
    return timings
