"""The bytes model of a BatchNorm pass (no torch import: the CLI's --help shows it).

E = elements of x, s = bytes per element; per-channel vectors are O(C) and left out.
"""

from __future__ import annotations

PASSES = ("forward", "forward+backward", "eval")
ELEMENT_PASSES = {"forward": 3, "forward+backward": 8, "eval": 2}

BYTES_MODEL = """\
bytes model (E = elements of x, s = bytes per element; per-channel vectors left out):
  eval forward      read x, write y                                       2 E s
  forward (train)   read x for the statistics, read x again to normalize,
                    write y                                               3 E s
  backward          read x and dy for the two reductions (sum dy,
                    sum dy*x_hat), read x and dy again, write dx          5 E s
  forward+backward  forward (train) + backward                            8 E s
The minimum for an implementation that streams x from memory (x does not stay in cache
between passes); a fused kernel that keeps x on chip could move less, a naive one moves more.
achieved GB/s = model bytes / median time; % peak = achieved / the bandwidth ceiling
(CUDA: the device's theoretical bandwidth; CPU: a streaming copy measured on this machine)."""


def bytes_moved(pass_name: str, shape: tuple[int, ...], element_size: int) -> int:
    """Bytes `pass_name` must move for an input of `shape` (BYTES_MODEL)."""
    elements = 1
    for size in shape:
        elements *= size
    return ELEMENT_PASSES[pass_name] * elements * element_size
