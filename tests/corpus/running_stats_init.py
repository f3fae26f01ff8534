"""running_var is initialised to zeros instead of ones.

Expected finding under the "pytorch" spec: running-stats-init.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.track_running_stats:
            self.running_var.zero_()  # BUG: initialised to zeros, not ones
