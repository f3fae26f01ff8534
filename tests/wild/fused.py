"""BatchNorm fused with an activation (timm's BatchNormAct2d, 'BNReLU' blocks).

With the activation on, the output is relu(BN(x)): not a BatchNorm output under any spec,
so a careful reader expects the output comparison to fail (output-mismatch), while the
running statistics, the reduction axes and the momentum are all right and must not be
blamed. affine-apply is deliberately in neither list: "the output is not gamma*x_hat+beta"
is literally true, but its diagnoses (swapped, multiplied by beta) would not be. With the
activation switched off (apply_act=False) the layer is torch.nn.BatchNorm2d and clean."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

STATS_RIGHT = {"running-var-estimator", "momentum-inverted", "momentum-default",
               "running-stats-not-updated", "eval-uses-batch-stats", "reduction-axes",
               "forward-failed", "input-rank-unsupported", "running-stats-shape",
               "batch-size-constraint", "input-modified", "dtype-support"}


class BatchNormAct2d(nn.BatchNorm2d):
    """Subclasses BatchNorm2d so checkpoints stay compatible; ReLU after the affine."""

    EXPECTED = {"output-mismatch"}
    FALSE = STATS_RIGHT

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, apply_act=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.act = nn.ReLU() if apply_act else nn.Identity()

    def forward(self, x):
        return self.act(super().forward(x))


class BatchNormNoAct2d(BatchNormAct2d):
    """The same layer built with apply_act=False (through --init): plain BatchNorm2d."""

    EXPECTED: set[str] = set()
    FALSE = STATS_RIGHT | {"output-mismatch", "affine-apply"}
    INIT = {"apply_act": False}


class BNReLU(nn.Module):
    """Composition style: a torch BatchNorm1d followed by F.relu, any rank 2-3."""

    EXPECTED = {"output-mismatch"}
    FALSE = STATS_RIGHT - {"input-rank-unsupported"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features, eps=eps, momentum=momentum)

    def forward(self, x):
        return F.relu(self.bn(x))
