"""Classes whose statistics are not where a by-name reading expects them: created in the first
forward, kept under other names, or fed to F.batch_norm in the wrong argument slots."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.wild._util import new_weight

STRUCTURE = {"forward-failed", "input-rank-unsupported", "affine-apply", "affine-params",
             "batch-size-constraint", "input-modified"}


class DeferredBatchNorm(nn.Module):
    """Learns its width from the first input, as nn.LazyBatchNorm2d does, but by hand: the
    parameters and buffers are declared as None and created in the first forward. Correct."""

    EXPECTED: set[str] = set()
    FALSE = STRUCTURE | {"running-stats-missing", "running-stats-not-buffers", "state-dict", "sequence-mismatch"}

    def __init__(self, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        for name in ("weight", "bias"):
            self.register_parameter(name, None)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, None)

    def _create(self, x):
        c, options = x.shape[1], {"device": x.device, "dtype": x.dtype}
        self.weight = nn.Parameter(torch.ones(c, **options))
        self.bias = nn.Parameter(torch.zeros(c, **options))
        self.running_mean = torch.zeros(c, **options)  # assigning to a declared buffer keeps it one
        self.running_var = torch.ones(c, **options)
        self.num_batches_tracked = torch.zeros((), dtype=torch.long, device=x.device)

    def forward(self, x):
        if self.running_mean is None:
            self._create(x)
        factor = 0.0
        if self.training:
            self.num_batches_tracked += 1
            factor = new_weight(self.momentum, self.num_batches_tracked)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            factor, self.eps)


class AveragesBatchNorm(nn.Module):
    """torch's arithmetic (F.batch_norm) with its running statistics kept under other names
    (`avg_mean`, `avg_var`), as a port that keeps its source framework's names does. Correct,
    except that its state_dict does not load into torch.nn.BatchNorm."""

    EXPECTED = {"state-dict"}
    FALSE = STRUCTURE | {"running-stats-missing", "sequence-mismatch", "running-stats-not-updated",
                         "momentum-default", "eval-uses-batch-stats", "output-mismatch"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("avg_mean", torch.zeros(num_features))
        self.register_buffer("avg_var", torch.ones(num_features))
        self.register_buffer("batches_seen", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self):
        self.avg_mean.zero_()
        self.avg_var.fill_(1)
        self.batches_seen.zero_()

    def forward(self, x):
        factor = 0.0
        if self.training:
            self.batches_seen.add_(1)
            factor = new_weight(self.momentum, self.batches_seen)
        return F.batch_norm(x, self.avg_mean, self.avg_var, self.weight, self.bias, self.training, factor, self.eps)


class SwappedArgumentsBatchNorm(nn.BatchNorm2d):
    """torch's layer whose forward passes eps and momentum to F.batch_norm in each other's slot
    (momentum comes before eps in its signature): the statistics move with weight 1e-5, and 0.1
    is added to the variance. Both constructor values end up in the wrong place, so neither has
    its documented effect. The statistics do move, and the variance is computed stably."""

    EXPECTED = {"momentum-default", "momentum-ignored", "eps-default", "eps-ignored"}
    FALSE = STRUCTURE | {"running-stats-not-updated", "unstable-variance", "running-var-estimator",
                         "momentum-inverted", "eps-placement"}

    def forward(self, x):
        self._check_input_dim(x)
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            self.eps, self.momentum)
