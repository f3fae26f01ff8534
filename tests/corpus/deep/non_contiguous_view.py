"""The statistics are computed on x.view(N, C, -1), which raises for permuted or sliced
(non-contiguous) 4-D and 5-D inputs; .reshape would work.

Expected finding under the "pytorch" spec: non-contiguous.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _batch_stats(self, xf, axes):
        flat = xf.view(xf.shape[0], xf.shape[1], -1)  # BUG: .view needs a contiguous input
        shape = [1, -1] + [1] * (xf.dim() - 2)
        mean = flat.mean(dim=(0, 2)).view(shape)
        var = flat.var(dim=(0, 2), correction=0).view(shape)
        return mean, var, xf.var(dim=axes, correction=1)
