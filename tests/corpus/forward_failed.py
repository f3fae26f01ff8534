"""forward raises on every input: a typo (`x.dtpye`) raises AttributeError.

Expected finding under the "pytorch" spec: forward-failed.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def forward(self, x):
        return super().forward(x).to(x.dtpye)  # BUG: typo, AttributeError on every call
