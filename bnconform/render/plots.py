"""Plots for the HTML report, drawn with matplotlib into small inline SVG.

matplotlib is imported lazily (only when a plot is drawn) so other formats start fast.
The SVG is rewritten for inlining under a strict Content-Security-Policy: `style="..."`
attributes become SVG presentation attributes and the embedded <style> element is
dropped (both would need 'unsafe-inline'), and element ids get a per-plot prefix so
two plots in one page cannot collide.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bnconform.render import common as c

MAX_SCATTER_POINTS = 200
FONT_FAMILY = "DejaVu Sans, Arial, sans-serif"
# (key, label, line style, marker, z-order, line width). The implementation is drawn
# last, on top, as markers on a thin line; the hypotheses as thick dashed/dotted lines with
# their own markers, so whichever hypothesis the implementation follows stays visible
# under it instead of being painted over.
_SERIES = (("spec", "spec", "--", "s", 1, 2.2),
           ("inverted", "inverted-momentum hypothesis", ":", "^", 2, 2.2),
           ("implementation", "implementation", "-", "o", 3, 0.9))


def running_stats_svg(trace: Any, prefix: str = "trace") -> str | None:
    """Running mean and variance over the steps for implementation, spec and hypothesis."""
    if not isinstance(trace, Mapping):
        return None
    steps = numbers(trace.get("steps"))
    series = [(row, trace.get(row[0])) for row in _SERIES if isinstance(trace.get(row[0]), Mapping)]
    if not steps or not series:
        return None
    from matplotlib.ticker import MaxNLocator

    fig = _figure(6.4, 2.8)
    for i, stat in enumerate(("mean", "var")):
        ax = fig.add_subplot(1, 2, i + 1)
        for (_, label, style, marker, z, width), data in series:
            ys = numbers(data.get(stat))
            n = min(len(steps), len(ys))
            big = z < 3  # hypotheses: larger hollow markers that show around the implementation's
            ax.plot(steps[:n], ys[:n], linestyle=style, marker=marker, markersize=6 if big else 3.5,
                    fillstyle="none" if big else "full", linewidth=width, zorder=z, label=label)
        ax.set_title(f"running {stat}, channel {plot_text(trace.get('channel'))}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.tick_params(labelsize=7)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=7, frameon=False)
    return to_svg(fig, prefix)


def output_comparison_svg(data: Any, prefix: str = "cmp") -> str | None:
    """Observed vs expected outputs as a scatter with the y = x line."""
    if not isinstance(data, Mapping):
        return None
    pairs = [(e, o) for e, o in zip(numbers(data.get("expected")), numbers(data.get("observed")),
                                    strict=False) if math.isfinite(e) and math.isfinite(o)]
    if not pairs:
        return None
    step = max(1, math.ceil(len(pairs) / MAX_SCATTER_POINTS))  # thin out: keep the SVG small
    xs, ys = zip(*pairs[::step], strict=True)
    lo, hi = min(min(xs), min(ys)), max(max(xs), max(ys))
    fig = _figure(3.4, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([lo, hi], [lo, hi], color="0.5", linewidth=1, label="y = x")
    ax.scatter(xs, ys, s=6, label="outputs")
    ax.set_xlabel("expected (spec reference)", fontsize=8)
    ax.set_ylabel("observed", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return to_svg(fig, prefix)


def numbers(value: Any) -> list[float]:
    """A JSON list as floats; strings like "nan" and other junk become NaN."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    out = []
    for v in value:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def plot_text(value: Any, limit: int = 40) -> str:
    """Result text safe for a matplotlib label: one line, short, no mathtext ($)."""
    return c.one_line(value, limit).replace("$", r"\$")


def prefetch_matplotlib() -> None:
    """Import what the plots need in a background thread of the supervisor, which only waits
    while the worker runs the checks: the ~0.9 s import then overlaps them (2 cores) instead of
    following them. A later import in the main thread simply waits for this one to finish."""
    import threading

    def load() -> None:
        import matplotlib.backends.backend_svg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.ticker  # noqa: F401

    threading.Thread(target=load, name="bnconform:prefetch-matplotlib", daemon=True).start()


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # lazy: matplotlib costs ~0.3 s to import

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def to_svg(fig: Any, prefix: str) -> str:
    """The figure as an inlinable <svg> element (no XML prolog, no metadata, no <style>)."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix,
                                "svg.image_inline": True}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return inline_svg(buf.getvalue(), prefix)


_STYLE_ATTR = re.compile(r'style="([^"]*)"')


def inline_svg(svg: str, prefix: str) -> str:
    """Rewrite matplotlib's SVG so it works inline under a CSP without 'unsafe-inline'."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<defs>\s*</defs>\s*", "", svg)
    svg = _STYLE_ATTR.sub(lambda m: _presentation_attrs(m.group(1)), svg)
    svg = re.sub(r'id="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', rf'url(#{prefix}-\1)', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    svg = re.sub(r'font-family="[^"]*"', f'font-family="{FONT_FAMILY}"', svg)  # 200 B per label
    # The dropped <style> set these defaults for the whole figure.
    return svg.replace("<svg ", '<svg class="plot" role="img" stroke-linejoin="round" '
                       'stroke-linecap="butt" ', 1)


def _presentation_attrs(style: str) -> str:
    """`fill: #fff; font: 9px 'DejaVu Sans'` -> `fill="#fff" font-size="9px" ...`."""
    attrs: dict[str, str] = {}
    for decl in style.split(";"):
        name, _, value = decl.partition(":")
        name, value = name.strip(), value.strip()
        if not name or not value:
            continue
        if name == "font":
            attrs.update(_font_shorthand(value))
        else:
            attrs[name] = value
    return " ".join(f'{k}="{v}"' for k, v in attrs.items())


def _font_shorthand(value: str) -> dict[str, str]:
    """Split matplotlib's `font: [style] [weight] SIZE FAMILY` into presentation attributes."""
    match = re.match(r"(?:(italic|oblique|normal)\s+)?(?:(\w+)\s+)?([\d.]+px)\s+(.*)", value)
    if not match:
        return {}
    style, weight, size, family = match.groups()
    out = {"font-size": size, "font-family": family.replace("'", "").replace('"', "")}
    if style:
        out["font-style"] = style
    if weight:
        out["font-weight"] = weight
    return out
