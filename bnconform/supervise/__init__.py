"""Run user code in a supervised worker process so nothing it does can forge the verdict.

The supervisor (this package's `run_supervised`) never imports torch or the target: it
starts one worker (`python -m bnconform.supervise.worker`), streams progress and per-check
results from it over a dedicated pipe, enforces the per-call timeout and `--max-time`, and
turns a worker that dies or hangs into a finding instead of a lost run.
"""

from bnconform.supervise.supervisor import model_note, run_supervised

__all__ = ["model_note", "run_supervised"]
