"""The running statistics are plain tensor attributes, not registered buffers: state_dict()
and .to() miss them.

Expected finding under the "pytorch" spec: running-stats-not-buffers.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.track_running_stats:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                tensor = getattr(self, name)
                delattr(self, name)
                setattr(self, name, tensor)  # BUG: a plain attribute, not a buffer
