"""Training with one value per channel does not raise: it returns beta and the
unbiased running variance becomes NaN (0/0).

Expected finding under the "pytorch" spec: batch-size-one.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _check_batch_size(self, xf):
        pass  # BUG: no check for one value per channel (torch raises ValueError)
