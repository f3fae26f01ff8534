"""load_state_dict silently resets the running statistics after loading them.

Expected finding under the "pytorch" spec: state-dict.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.running_mean is not None:  # BUG: meant for old checkpoints only
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
