"""The batch mean and variance are detached before normalizing: outputs are right, the
input gradient is wrong.

Expected finding under the "pytorch" spec: grad-mismatch.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _batch_stats(self, xf, axes):
        mean, var, unbiased_var = super()._batch_stats(xf, axes)
        return mean.detach(), var.detach(), unbiased_var  # BUG: cut from the graph
