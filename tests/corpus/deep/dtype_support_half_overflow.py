"""Statistics are computed in the input's dtype (no float32 accumulation for half inputs), with
the squares written out: a float16 input with a standard deviation of a few hundred overflows
((x - mean)^2 > 65504), so the variance is inf and the output collapses to beta.

Expected finding under the "pytorch" spec: dtype-support.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _working_input(self, x):
        return x  # BUG: no float32 accumulation for float16/bfloat16 inputs

    def _batch_stats(self, xf, axes):
        mean = xf.mean(dim=axes, keepdim=True)
        var = ((xf - mean) ** 2).mean(dim=axes, keepdim=True)
        return mean, var, xf.var(dim=axes, correction=1)
