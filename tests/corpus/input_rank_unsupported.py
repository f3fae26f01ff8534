"""(N, C, L) inputs are rejected: only 2-D, 4-D and 5-D inputs are accepted.

Expected finding under the "pytorch" spec: input-rank-unsupported.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _check_input(self, x):
        if x.dim() not in (2, 4, 5):  # BUG: (N, C, L) forgotten
            raise ValueError(f"expected 2D, 4D or 5D input (got {x.dim()}D input)")
