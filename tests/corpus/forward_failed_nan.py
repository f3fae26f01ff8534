"""forward returns NaN: the variance is written E[x]^2 - E[x^2] (negative), so sqrt is NaN.

Expected finding under the "pytorch" spec: forward-failed.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _batch_stats(self, xf, axes):
        mean, _, unbiased_var = super()._batch_stats(xf, axes)
        var = mean * mean - (xf * xf).mean(dim=axes, keepdim=True)  # BUG: swapped
        return mean, var, unbiased_var
