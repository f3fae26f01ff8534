"""Course-homework style (cs231n's batchnorm_forward as a module): (N, D) input only.

A class that only accepts (N, C) but is otherwise correct must get exactly
input-rank-unsupported; with a second bug, that bug too. None of them may be blocked by a
rank-4 probe (forward-failed) or misread through broadcasting on (N, C, L) inputs
(affine-apply, running-stats-shape)."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import new_weight, working

RANK_FALSE = {"forward-failed", "affine-apply", "running-stats-shape", "batch-size-constraint",
              "input-modified", "momentum-none"}


class FeatureBatchNorm(nn.Module):
    """(N, D) only, checked with an assert; otherwise torch.nn.BatchNorm1d on 2-D input."""

    EXPECTED = {"input-rank-unsupported"}
    FALSE = RANK_FALSE | {"reduction-axes", "momentum-inverted", "running-var-estimator"}

    def __init__(self, D, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(D))
        self.bias = nn.Parameter(torch.zeros(D))
        self.register_buffer("running_mean", torch.zeros(D))
        self.register_buffer("running_var", torch.ones(D))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        assert x.dim() == 2, "input must be (N, D)"
        xf = working(x)
        if self.training:
            if x.shape[0] < 2:
                raise ValueError("Expected more than 1 value per channel when training")
            mu = xf.mean(0)
            var = xf.var(0, unbiased=False)
            self._track(mu, var, x.shape[0])
        else:
            mu, var = self.running_mean, self.running_var
        return (self.weight * (xf - mu) / torch.sqrt(var + self.eps) + self.bias).to(x.dtype)

    @torch.no_grad()
    def _track(self, mu, var, n):
        self.num_batches_tracked += 1
        m = new_weight(self.momentum, self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(m * mu)
        self.running_var.mul_(1 - m).add_(m * self._running_var_sample(var, n))

    def _running_var_sample(self, var, n):
        return var * n / (n - 1)


class FeatureBatchNormBiased(FeatureBatchNorm):
    """The homework's update: running_var follows the biased sample variance."""

    EXPECTED = {"input-rank-unsupported", "running-var-estimator"}
    FALSE = RANK_FALSE | {"dtype-support", "reduction-axes", "momentum-inverted"}

    def _running_var_sample(self, var, n):
        return var


class HomeworkBatchNorm(nn.Module):
    """cs231n's formula `running = momentum * running + (1 - momentum) * sample` with
    PyTorch's momentum=0.1 default: the new batch gets weight 0.9 (inverted)."""

    EXPECTED = {"input-rank-unsupported", "momentum-inverted"}
    FALSE = RANK_FALSE | {"reduction-axes", "running-var-estimator"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if x.ndim != 2:
            raise ValueError(f"expected (N, D) input, got {tuple(x.shape)}")
        xf = working(x)
        if self.training:
            if len(x) == 1:
                raise ValueError("Expected more than 1 value per channel when training")
            mean = xf.mean(dim=0)
            var = xf.var(dim=0, unbiased=False)
            with torch.no_grad():
                self.num_batches_tracked += 1
                # cs231n's momentum is the old value's weight; None: cumulative average
                m = self.momentum
                if m is None:
                    m = 1 - new_weight(None, self.num_batches_tracked)
                unbiased = xf.var(dim=0, unbiased=True)
                self.running_mean.copy_(m * self.running_mean + (1 - m) * mean)
                self.running_var.copy_(m * self.running_var + (1 - m) * unbiased)
        else:
            mean, var = self.running_mean, self.running_var
        return ((xf - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias).to(x.dtype)


class DenseBatchNorm(nn.Module):
    """(N, C) arithmetic with no rank check at all: on (N, C, L) it reduces over N only and
    broadcasts the (C,) parameters against L, so it raises unless L == C. A probe with L == C
    would see garbage that is not this class's (N, C) arithmetic."""

    EXPECTED = {"input-rank-unsupported"}
    FALSE = RANK_FALSE | {"reduction-axes", "momentum-inverted", "running-var-estimator",
                          "norm-variance-estimator", "eps-placement", "eps-default"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf = working(x)
        if self.training:
            if x.shape[0] == 1:
                raise ValueError("Expected more than 1 value per channel when training")
            mean, var = xf.mean(0), xf.var(0, unbiased=False)
            n = x.shape[0]
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = new_weight(self.momentum, self.num_batches_tracked)
                self.running_mean.copy_((1 - m) * self.running_mean + m * mean)
                self.running_var.copy_((1 - m) * self.running_var + m * var * n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        return (self.weight * (xf - mean) / torch.sqrt(var + self.eps) + self.bias).to(x.dtype)


class RowNormBatchNorm(FeatureBatchNorm):
    """(N, D) only, and normalizes each row over its features (LayerNorm by mistake:
    dim=1 instead of dim=0); the running statistics are right."""

    EXPECTED = {"input-rank-unsupported", "reduction-axes"}
    FALSE = RANK_FALSE | {"dtype-support", "momentum-inverted", "running-var-estimator"}

    def forward(self, x):
        assert x.dim() == 2, "input must be (N, D)"
        xf = working(x)
        if not self.training:
            return super().forward(x)
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        self._track(xf.mean(0), xf.var(0, unbiased=False), x.shape[0])
        mu = xf.mean(1, keepdim=True)
        var = xf.var(1, unbiased=False, keepdim=True)
        return (self.weight * (xf - mu) / torch.sqrt(var + self.eps) + self.bias).to(x.dtype)


class ParamDictBatchNorm(FeatureBatchNorm):
    """cs231n's calling convention kept in the port: eps and momentum arrive in a `bn_param`
    dict (None: defaults); the width is `D`. Otherwise FeatureBatchNorm: (N, D) only."""

    EXPECTED = {"input-rank-unsupported"}
    FALSE = RANK_FALSE | {"reduction-axes", "momentum-inverted", "running-var-estimator",
                          "construct-failed"}

    def __init__(self, D, bn_param=None):
        bn_param = dict(bn_param or {})
        super().__init__(D, eps=bn_param.get("eps", 1e-5), momentum=bn_param.get("momentum", 0.1))


class FeatureBatchNormEpsOutside(FeatureBatchNorm):
    """(N, D) only, and eps outside the square root: (x - mu) / (sqrt(var) + eps)."""

    EXPECTED = {"input-rank-unsupported", "eps-placement"}
    FALSE = RANK_FALSE | {"dtype-support", "reduction-axes", "momentum-inverted", "running-var-estimator",
                          "eps-default", "unstable-variance"}

    def forward(self, x):
        assert x.dim() == 2, "input must be (N, D)"
        xf = working(x)
        if self.training:
            if x.shape[0] < 2:
                raise ValueError("Expected more than 1 value per channel when training")
            mu, var = xf.mean(0), xf.var(0, unbiased=False)
            self._track(mu, var, x.shape[0])
        else:
            mu, var = self.running_mean, self.running_var
        return (self.weight * (xf - mu) / (torch.sqrt(var) + self.eps) + self.bias).to(x.dtype)
