"""Rank 1 starts a helper process, then stops dead (SIGSTOP) in forward: it never reports,
never leaves a collective, and only a kill from outside ends it (and its helper).

Expected under the "pytorch" spec with --world-size N: sync-rank-failed.
"""

import os
import signal
import subprocess
import sys

import torch.distributed as dist

from tests.corpus.sync.syncbn import SyncBatchNorm as Correct


class SyncBatchNorm(Correct):
    def forward(self, x):
        if self._synced() and dist.get_rank() == 1:
            helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            pid_file = os.environ.get("BNCONFORM_TEST_HELPER_PID")
            if pid_file:
                with open(pid_file, "w") as f:
                    f.write(str(helper.pid))
            os.kill(os.getpid(), signal.SIGSTOP)  # BUG: the rank hangs without a trace
        return super().forward(x)
