"""The constructor raises: `running_mean` is first set as a plain attribute, so
register_buffer raises KeyError (attribute already exists).

Expected finding under the "pytorch" spec: construct-failed.
"""

from __future__ import annotations

from tests.corpus.reference import BatchNorm as Reference


class BatchNorm(Reference):
    def __init__(self, *args, **kwargs):
        self.running_mean = None  # BUG: plain attribute; register_buffer in super().__init__ raises
        super().__init__(*args, **kwargs)
