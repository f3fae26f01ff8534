"""Training output is scaled by 1.01; no specific finding explains it.

Expected finding under the "pytorch" spec: output-mismatch.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def forward(self, x):
        y = super().forward(x)
        return y * 1.01 if self.training else y  # BUG: a stray scale factor
