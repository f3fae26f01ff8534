"""Training normalizes per sample over (C, H, W), like LayerNorm; running statistics are
still per channel and right.

Expected finding under the "pytorch" spec: reduction-axes.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _stats_for(self, xf, axes, shape):
        mean, var = super()._stats_for(xf, axes, shape)  # running statistics stay right
        if self._uses_batch_stats():
            # BUG: per-sample statistics over C and the spatial axes (LayerNorm-like)
            per_sample = list(range(1, xf.dim()))
            mean = xf.mean(dim=per_sample, keepdim=True)
            var = xf.var(dim=per_sample, correction=0, keepdim=True)
        return mean, var
