"""The running statistics are buffers named moving_mean/moving_var (d2l's names): a
torch.nn.BatchNorm state_dict does not load into it, nor its state_dict into torch.

Expected finding under the "pytorch" spec: state-dict.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    # The reference's code reads running_mean/running_var: here they only alias the buffers
    # (properties, which neither state_dict() nor bnconform's discovery sees).
    running_mean = property(lambda self: self.moving_mean)
    running_var = property(lambda self: self.moving_var)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # BUG: the buffers are registered as moving_mean/moving_var (d2l's names)
        self.register_buffer("moving_mean", self._buffers.pop("running_mean"))
        self.register_buffer("moving_var", self._buffers.pop("running_var"))
        self.register_buffer("num_batches_tracked", self._buffers.pop("num_batches_tracked"))
