"""A channels_last fast path flattens the input to (N*H*W, C) correctly, but turns the result
back with .view(N, C, H, W) instead of .view(N, H, W, C).permute(0, 3, 1, 2): channels_last
inputs get scrambled outputs (every other layout is right).

Expected finding under the "pytorch" spec: memory-format.
"""

from __future__ import annotations

import torch

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def forward(self, x):
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            return self._channels_last(x)
        return super().forward(x)

    def _channels_last(self, x):
        n, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(-1, c)  # (N*H*W, C), contiguous
        if self.training and self.track_running_stats:
            self._count_batch()
        mean, var = self._stats_for(flat, [0], [1, -1])
        out = self._normalize(flat, mean, var)
        if self.affine:
            out = self._apply_affine(out, [1, -1])
        return out.view(n, c, h, w)  # BUG: should be out.view(n, h, w, c).permute(0, 3, 1, 2)
