"""Statistics done differently: which values are averaged, how the running estimates move,
and when each set is used. One deviation per class, the rest as torch.nn.BatchNorm."""

from __future__ import annotations

import torch
from torch import nn

from tests.wild._util import channel_axes, new_weight, per_channel, refuse_single_value, working

# Claims none of these classes earns, because their arithmetic is right there.
STRUCTURE = {"forward-failed", "input-rank-unsupported", "affine-apply", "affine-params",
             "batch-size-constraint", "input-modified"}
# These classes compute in float32 for half inputs and their defect does not depend on the
# dtype: "wrong values in low precision" measured against the spec (not against the class's
# own float64 result) would be the semantic bug misfiled as a precision one.
SEMANTIC = STRUCTURE | {"dtype-support"}


class _TorchLike(nn.Module):
    """torch.nn.BatchNorm semantics split into steps that a subclass replaces."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        xf, shape = working(x), per_channel(x)
        if self.is_training():
            refuse_single_value(x)
            mean, var = self.train_stats(xf)
        else:
            mean, var = self.eval_stats(xf)
        y = (xf - mean) / torch.sqrt(var + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)

    def is_training(self):
        return self.training

    def batch_stats(self, xf):
        """Per-channel mean and biased variance, (C,), and the unbiased variance."""
        axes = channel_axes(xf)
        n = xf.numel() // xf.shape[1]
        var, mean = torch.var_mean(xf, dim=axes, correction=0)
        return mean, var, var * n / (n - 1)

    def train_stats(self, xf):
        mean, var, unbiased = self.batch_stats(xf)
        self.update(mean, var, unbiased)
        shape = per_channel(xf)
        return mean.view(shape), var.view(shape)

    def eval_stats(self, xf):
        shape = per_channel(xf)
        return self.running_mean.view(shape), self.running_var.view(shape)

    @torch.no_grad()
    def update(self, mean, var, unbiased):
        self.num_batches_tracked.add_(1)
        m = new_weight(self.momentum, self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(m * mean)
        self.running_var.mul_(1 - m).add_(m * unbiased)


class PerSampleBatchNorm(_TorchLike):
    """Training normalizes each sample over (C, *spatial), LayerNorm-like (a wrong `dim`);
    the running statistics are per channel and right, eval uses them."""

    EXPECTED = {"reduction-axes"}
    FALSE = SEMANTIC | {"momentum-inverted", "momentum-default", "eps-default",
                         "running-var-estimator", "running-stats-shape"}

    def train_stats(self, xf):
        super().train_stats(xf)  # running statistics still right
        axes = tuple(range(1, xf.dim()))
        var, mean = torch.var_mean(xf, dim=axes, correction=0, keepdim=True)
        return mean, var


class PerPositionBatchNorm(_TorchLike):
    """`x.mean(0)` on a feature map: statistics per (c, h, w) position over N only; the
    running statistics are per channel and right."""

    EXPECTED = {"reduction-axes"}
    FALSE = SEMANTIC | {"momentum-inverted", "momentum-default", "running-var-estimator",
                         "running-stats-shape"}

    def train_stats(self, xf):
        super().train_stats(xf)
        var, mean = torch.var_mean(xf, dim=0, correction=0, keepdim=True)
        return mean, var


class BiasedRunningVarBatchNorm(_TorchLike):
    """running_var follows the biased variance (Keras/Flax/ONNX habit) under the pytorch spec."""

    EXPECTED = {"running-var-estimator"}
    FALSE = SEMANTIC | {"momentum-inverted", "momentum-default", "norm-variance-estimator",
                         "reduction-axes", "running-stats-shape"}

    @torch.no_grad()
    def update(self, mean, var, unbiased):
        super().update(mean, var, var)


class VarMomentumInvertedBatchNorm(_TorchLike):
    """running_mean is updated right; running_var with the old-weight formula
    (`m * running + (1 - m) * batch`), so only the variance's momentum is inverted."""

    EXPECTED = {"momentum-inverted"}
    FALSE = STRUCTURE | {"running-var-estimator", "momentum-default", "reduction-axes",
                         "running-stats-shape"}

    @torch.no_grad()
    def update(self, mean, var, unbiased):
        self.num_batches_tracked.add_(1)
        m = new_weight(self.momentum, self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(m * mean)
        self.running_var.mul_(m).add_((1 - m) * unbiased)


class RunningStdBatchNorm(_TorchLike):
    """Batch-renorm habit: the buffer called running_var tracks the (unbiased) standard
    deviation, and eval squares it back. Internally consistent, wrong as a running
    variance: a torch checkpoint or F.batch_norm reading it normalizes with the std."""

    EXPECTED = {"running-var-estimator"}
    FALSE = STRUCTURE | {"momentum-inverted", "momentum-default", "reduction-axes",
                         "running-stats-shape", "eval-uses-batch-stats"}

    @torch.no_grad()
    def update(self, mean, var, unbiased):
        super().update(mean, var, unbiased.sqrt())

    def eval_stats(self, xf):
        mean, std = super().eval_stats(xf)
        return mean, std * std


class KerasMomentumBatchNorm(_TorchLike):
    """A Keras port that keeps Keras' momentum=0.9 default (weight of the OLD value) but
    uses PyTorch's new-weight formula: every step the batch gets weight 0.9."""

    EXPECTED = {"momentum-inverted"}
    FALSE = STRUCTURE | {"running-var-estimator", "momentum-ignored", "reduction-axes"}

    def __init__(self, num_features, eps=1e-5, momentum=0.9):
        super().__init__(num_features, eps, momentum)


class HalfPortedMomentumBatchNorm(_TorchLike):
    """A half-finished Keras port: momentum=None, its default, stands for PyTorch's 0.1, but a
    momentum passed explicitly is read the Keras way, as the weight of the OLD value. The
    momentum=None behaviour (0.1 at every step, no cumulative average) is its own code path:
    flipping the explicit formula would not change it, so it is not filed under the inversion."""

    EXPECTED = {"momentum-inverted", "momentum-none"}
    FALSE = STRUCTURE | {"running-var-estimator", "momentum-ignored", "momentum-default", "reduction-axes"}

    def __init__(self, num_features, eps=1e-5, momentum=None):
        super().__init__(num_features, eps, momentum)

    def update(self, mean, var, unbiased):
        self.num_batches_tracked.add_(1)
        old = 0.9 if self.momentum is None else self.momentum
        with torch.no_grad():
            self.running_mean.mul_(old).add_((1 - old) * mean)
            self.running_var.mul_(old).add_((1 - old) * unbiased)


class EvalWithoutEpsBatchNorm(_TorchLike):
    """Homework style: the eval branch is written out separately and divides by
    sqrt(running_var), eps forgotten; training is right. Outputs differ only where a running
    variance is comparable to eps, so only eval-mode measurements with the eps requested show it."""

    EXPECTED = {"eps-ignored"}
    FALSE = SEMANTIC | {"eps-placement", "eps-default", "eval-uses-batch-stats", "momentum-inverted",
                        "running-var-estimator", "unstable-variance", "norm-variance-estimator"}

    def forward(self, x):
        if self.training:
            return super().forward(x)
        xf, shape = working(x), per_channel(x)
        y = (xf - self.running_mean.view(shape)) / self.running_var.view(shape).sqrt()
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)


class StaleStatsBatchNorm(_TorchLike):
    """Never updates its statistics and always normalizes with them (0 and 1): the counter
    moves, nothing else does. Eps and variance-algorithm claims would be misreadings."""

    EXPECTED = {"running-stats-not-updated", "train-uses-running-stats"}
    FALSE = SEMANTIC | {"eps-default", "eps-placement", "eps-ignored", "unstable-variance",
                         "momentum-inverted", "momentum-default", "norm-variance-estimator"}

    def train_stats(self, xf):
        self.num_batches_tracked.add_(1)
        return self.eval_stats(xf)


class EveryOtherStepBatchNorm(_TorchLike):
    """Updates its running statistics on every other step only (a gradient-accumulation guard
    tested on the wrong counter): the first step leaves them, the second moves them. "Never
    moves", and a momentum read from the first step, would be false."""

    EXPECTED = {"running-stats-not-updated"}
    FALSE = SEMANTIC | {"momentum-inverted", "momentum-default", "momentum-ignored", "running-var-estimator",
                         "train-uses-running-stats", "norm-variance-estimator"}

    @torch.no_grad()
    def update(self, mean, var, unbiased):
        if int(self.num_batches_tracked) % 2 == 1:
            super().update(mean, var, unbiased)
        else:
            self.num_batches_tracked.add_(1)


class EvalBatchStatsBatchNorm(_TorchLike):
    """Eval normalizes with the current batch's statistics (the `training` flag is only used
    to decide whether to update)."""

    EXPECTED = {"eval-uses-batch-stats"}
    FALSE = SEMANTIC | {"momentum-inverted", "running-var-estimator", "reduction-axes",
                         "eval-updates-running-stats"}

    def eval_stats(self, xf):
        mean, var, _ = self.batch_stats(xf)
        shape = per_channel(xf)
        return mean.view(shape), var.view(shape)


class EmaInTrainingBatchNorm(_TorchLike):
    """Updates first, then normalizes with the freshly updated running statistics in
    training too (step 1 from 0/1 looks almost like nothing; later steps show it). Its
    half-precision weakness is real: training reads running_var from a float16 buffer."""

    EXPECTED = {"train-uses-running-stats"}
    FALSE = STRUCTURE | {"eps-default", "unstable-variance", "reduction-axes",
                         "momentum-inverted", "running-var-estimator"}

    def train_stats(self, xf):
        super().train_stats(xf)
        return self.eval_stats(xf)


class GradModeBatchNorm(_TorchLike):
    """Chooses batch or running statistics by torch.is_grad_enabled() (d2l style)."""

    EXPECTED = {"mode-follows-grad"}
    FALSE = SEMANTIC | {"momentum-inverted", "running-var-estimator", "reduction-axes",
                         "running-stats-shape", "running-stats-not-buffers"}

    def is_training(self):
        return torch.is_grad_enabled()


class AttachedStatsBatchNorm(_TorchLike):
    """Reassigns the buffers from undetached batch statistics: running_mean carries the
    autograd graph of every batch."""

    EXPECTED = {"running-stats-grad"}
    FALSE = STRUCTURE | {"momentum-inverted", "running-var-estimator", "reduction-axes",
                         "running-stats-not-buffers", "running-stats-shape"}

    def update(self, mean, var, unbiased):
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
        m = new_weight(self.momentum, self.num_batches_tracked)
        self.running_mean = (1 - m) * self.running_mean + m * mean
        self.running_var = (1 - m) * self.running_var + m * unbiased


class AttributeStatsBatchNorm(_TorchLike):
    """Running statistics as plain tensor attributes (C,), moved by hand in forward."""

    EXPECTED = {"running-stats-not-buffers"}
    FALSE = STRUCTURE | {"momentum-inverted", "running-var-estimator", "reduction-axes",
                         "running-stats-missing", "running-stats-shape"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        nn.Module.__init__(self)
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.running_mean = torch.zeros(num_features)
        self.running_var = torch.ones(num_features)
        self.num_batches_tracked = torch.tensor(0, dtype=torch.long)

    def forward(self, x):
        if self.running_mean.device != x.device:
            self.running_mean = self.running_mean.to(x.device)
            self.running_var = self.running_var.to(x.device)
            self.num_batches_tracked = self.num_batches_tracked.to(x.device)
        return super().forward(x)


class ParameterStatsBatchNorm(_TorchLike):
    """Running statistics as nn.Parameter (trainable by default), moved in place under no_grad.
    They are not buffers and they require grad, but they carry no autograd history."""

    EXPECTED = {"running-stats-not-buffers"}
    FALSE = SEMANTIC | {"running-stats-grad", "momentum-inverted", "running-var-estimator", "reduction-axes",
                        "running-stats-missing", "running-stats-shape", "state-dict"}

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        nn.Module.__init__(self)
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.running_mean = nn.Parameter(torch.zeros(num_features))
        self.running_var = nn.Parameter(torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))


class FixedMomentumFormulaBatchNorm(_TorchLike):
    """Correct for a float momentum; `momentum=None` (PyTorch's cumulative average) raises a
    TypeError in `1 - self.momentum`."""

    EXPECTED = {"momentum-none"}
    FALSE = STRUCTURE | {"sequence-mismatch", "momentum-inverted", "running-var-estimator",
                         "reduction-axes", "momentum-ignored"}

    @torch.no_grad()
    def update(self, mean, var, unbiased):
        self.num_batches_tracked.add_(1)
        self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
        self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbiased)


class InplaceEvalBatchNorm(_TorchLike):
    """An 'inference optimisation': in eval, normalizes the input tensor in place and
    returns it, so the caller's tensor is overwritten. Values are right."""

    EXPECTED = {"input-modified"}
    # Its values are right for every dtype and layout: wrong values there are the probe
    # reusing an input this class overwrote, not a dtype or layout defect.
    FALSE = {"dtype-support", "non-contiguous", "memory-format", "forward-failed",
             "input-rank-unsupported", "affine-apply", "eval-uses-batch-stats",
             "eval-updates-running-stats", "momentum-inverted", "running-var-estimator",
             "reduction-axes"}

    def forward(self, x):
        if self.training or x.requires_grad or x.dtype != self.running_mean.dtype:
            return super().forward(x)
        shape = per_channel(x)
        with torch.no_grad():
            scale = self.weight.view(shape) * torch.rsqrt(self.running_var.view(shape) + self.eps)
            return x.sub_(self.running_mean.view(shape)).mul_(scale).add_(self.bias.view(shape))


class MeanOnlyBatchNorm(nn.Module):
    """Mean-only batch normalization, the companion of weight normalization: training subtracts
    the batch mean (kept as a running mean for eval) and never divides by a standard deviation.
    Against the pytorch spec that is a normalization without the variance; read as an eps
    ("adds 1 to the variance", from a denominator of 1 at tiny variances) it would be a wrong cause."""

    EXPECTED = {"norm-variance-estimator", "running-stats-missing"}
    FALSE = STRUCTURE - {"affine-apply"} | {"eps-default", "eps-placement", "eps-ignored", "unstable-variance",
                                           "reduction-axes", "train-uses-running-stats", "dtype-support"}

    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        xf, shape = working(x), per_channel(x)
        if self.training:
            mean = xf.mean(dim=channel_axes(x))
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        else:
            mean = self.running_mean.to(xf.dtype)
        return (xf - mean.view(shape) + self.bias.view(shape)).to(x.dtype)
