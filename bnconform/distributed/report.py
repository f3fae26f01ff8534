"""The "distributed" section of the result JSON, and its Markdown and HTML rendering.

`section(outcome)` needs torch (it reads the Outcome); `markdown(result)` and `html(result)`
read only the JSON dict, so `bnconform report` re-renders without torch. Every value from
the result is escaped by the renderers' own helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SHOWN_SCENARIO = "uneven"  # the running statistics shown per rank: the most telling scenario


def section(outcome: Any) -> dict[str, Any]:
    """Per-rank table: status, shards, worst errors, running statistics, verdict; and the setup."""
    from bnconform.distributed.expect import TOL

    g = outcome.gathered
    ranks = [rank_row(outcome, r) for r in range(g.world_size)]
    return {
        "world_size": g.world_size, "launcher": g.launcher,
        "backend": first(g.records, "backend"), "device": first(g.records, "device"),
        "synchronised_via": first(g.records, "via"), "tolerance": TOL,
        "scenarios": [{"name": sc.name, "shards": list(sc.shards)} for sc in outcome.scenarios],
        "baseline": outcome.baseline, "ranks": ranks,
        "summed_grad_error": {sc.name: {"weight": sc.weight_grad, "bias": sc.bias_grad} for sc in outcome.scenarios},
        "duration_s": round(outcome.duration_s, 3),
    }


def rank_row(outcome: Any, rank: int) -> dict[str, Any]:
    from bnconform.distributed.judge import off

    steps = [s for sc in outcome.scenarios for s in sc.steps if s.rank == rank]
    error = outcome.failures().get(rank)
    shown = next((s for s in steps if s.scenario == SHOWN_SCENARIO), steps[-1] if steps else None)
    worst = {key: max((getattr(s, key) for s in steps), default=None) for key in ("output", "input_grad")}
    differs = any(off(getattr(s, k)) for s in steps for k in ("output", "input_grad", "running_mean", "running_var"))
    return {
        "rank": rank, "status": error["kind"] if error else "ok",
        "samples": [s.samples for s in steps],
        "output_error": worst["output"], "input_grad_error": worst["input_grad"],
        "running_mean": shown.observed["running_mean"] if shown else None,
        "running_var": shown.observed["running_var"] if shown else None,
        "num_batches_tracked": shown.observed["num_batches_tracked"] if shown else None,
        "verdict": f"failed ({error['kind']})" if error else ("differs" if differs else "matches"),
        "error": error,
    }


def first(records: Mapping[int, Mapping[str, Any]], key: str) -> str:
    return next((str(r[key]) for r in records.values() if r.get(key)), "")


def rows(data: Mapping[str, Any]) -> list[list[str]]:
    return [[str(r.get("rank")), str(r.get("status")), ", ".join(map(str, r.get("samples") or [])),
             number(r.get("output_error")), number(r.get("input_grad_error")), values(r.get("running_mean")),
             values(r.get("running_var")), str(r.get("num_batches_tracked")), str(r.get("verdict"))]
            for r in data.get("ranks") or [] if isinstance(r, Mapping)]


HEADERS = ["rank", "status", "samples per scenario", "output error", "input grad error",
           f"running_mean ({SHOWN_SCENARIO})", f"running_var ({SHOWN_SCENARIO})", "num_batches_tracked", "verdict"]


def setup_line(data: Mapping[str, Any]) -> str:
    listed = [s for s in data.get("scenarios") or [] if isinstance(s, Mapping)]
    shards = "; ".join(f"{s.get('name')} {s.get('shards')}" for s in listed)
    return (f"{data.get('world_size')} ranks ({data.get('launcher')}), backend {data.get('backend')} on "
            f"{data.get('device')}, synchronising via {data.get('synchronised_via') or 'unknown'}; shards: "
            f"{shards or 'none completed'}; errors are relative, tolerance {data.get('tolerance')}")


def number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)


def values(value: Any) -> str:
    if not isinstance(value, list):
        return "none" if value is None else str(value)
    return "[" + ", ".join(number(v) for v in value) + "]"


def failures(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(heading, traceback) of every failed rank."""
    out = []
    for r in data.get("ranks") or []:
        error = r.get("error") if isinstance(r, Mapping) else None
        if isinstance(error, Mapping):
            out.append((f"rank {r.get('rank')} {error.get('kind')} in {error.get('what')}: {error.get('message')}",
                        str(error.get("traceback") or "")))
    return out


def markdown(result: Mapping[str, Any]) -> str:
    """The section for the Markdown report ("" for a single-process run)."""
    data = result.get("distributed")
    if not isinstance(data, Mapping):
        return ""
    from bnconform.render import markdown as md

    parts = ["## Distributed (SyncBatchNorm)", md.esc(setup_line(data)), md.table(HEADERS, rows(data))]
    for heading, trace in failures(data):
        parts += [f"**{md.esc(heading)}**", md.code_block(trace, "text")]
    return "\n\n".join(parts)


def html(result: Mapping[str, Any]) -> str:
    """The section for the HTML report ("" for a single-process run)."""
    data = result.get("distributed")
    if not isinstance(data, Mapping):
        return ""
    from bnconform.render.html_parts import e

    head = "".join(f"<th>{e(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows(data))
    traces = "".join(f"<details open><summary>{e(h)}</summary><pre>{e(t)}</pre></details>"
                     for h, t in failures(data))
    return (f'<section id="distributed"><h2>Distributed (SyncBatchNorm)</h2><p>{e(setup_line(data))}</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{traces}</section>")
