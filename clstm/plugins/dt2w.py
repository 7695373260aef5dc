"""DT2W (Qiao et al., "Class-incremental learning for time series: benchmark and evaluation", KDD
2024; TSCIL's ``agents/dt2w.py``) on recurrent models: LwF's distillation of the outputs, plus a
soft dynamic-time-warping distance between the feature maps of the model and of the model after
the previous experience, plus prototype augmentation (PASS, Zhu et al., CVPR 2021) for the
classes of earlier experiences.

On a 1-D CNN, TSCIL's feature map is the last convolution block's output ``(C, L)``; on a
recurrent model it is the last layer's hidden state at every step ``(T, H)``, read from the
training forward itself (a hook on the recurrent layer during that forward: no second pass). The
previous model's comes from the forward LwF already makes. Per experience after the first:

``loss = CE + alpha * KD(outputs) + fmap * mean_b softDTW_gamma(h_b, h'_b) + proto_aug * CE(aug)``

- ``KD``: clstm's LwF term (:class:`clstm.plugins.lwf.LwFPlugin`, as TSCIL's ``loss_fn_kd``:
  KL at temperature 2, batch mean, no ``T^2``);
- ``softDTW``: :func:`soft_dtw` with squared Euclidean cost, ``gamma`` 1, no band and no
  normalisation (TSCIL's ``SoftDTW(gamma=1, normalize=False)``), over each sequence's real steps;
- ``aug``: a batch of old-class prototypes (the mean encoder feature of each class, kept when its
  experience ends) plus Gaussian noise of radius ``sqrt(mean_c tr(cov_c) / d)`` (from the first
  experience's classes, as TSCIL), classified by the head.

``adaptive: true`` weighs ``CE`` by ``1 / (t + 1)`` and the rest by ``1 - 1 / (t + 1)`` at
experience ``t`` (TSCIL's ``adaptive_weight``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from clstm.plugins.lwf import LwFPlugin

#: stands for an impossible cell of the recursion (finite: exp(-BIG / gamma) is 0, no NaN)
BIG = 1e10


def soft_dtw(x: torch.Tensor, y: torch.Tensor, x_lengths=None, y_lengths=None,
             gamma: float = 1.0) -> torch.Tensor:  # fmt: skip
    """Soft-DTW (Cuturi & Blondel, ICML 2017) between ``x`` ``(B, n, d)`` and ``y`` ``(B, m, d)``,
    each row read up to its length (``x_lengths``, ``y_lengths``: ``(B,)``; default all steps):
    ``(B,)``, differentiable in ``x`` and ``y``.

    The cost of aligning steps ``i`` and ``j`` is ``||x_i - y_j||^2``; the recursion is
    ``R(i, j) = cost(i, j) + softmin_gamma(R(i-1, j-1), R(i-1, j), R(i, j-1))`` with
    ``softmin_gamma(a) = -gamma log sum exp(-a / gamma)``, ``R(0, 0) = 0`` and the other borders
    impossible, so ``R(n, m) = -gamma log sum_paths exp(-cost(path) / gamma)`` over every warping
    path; ``gamma = 0`` is the hard minimum, DTW. Forward and backward (the paper's Algorithm 2)
    run one anti-diagonal at a time, without an autograd graph of the recursion.
    """
    b, n, m = x.shape[0], x.shape[1], y.shape[1]
    xl = torch.full((b,), n) if x_lengths is None else torch.as_tensor(x_lengths).cpu()
    yl = torch.full((b,), m) if y_lengths is None else torch.as_tensor(y_lengths).cpu()
    return _SoftDTW.apply(x, y, xl.long().to(x.device), yl.long().to(x.device), float(gamma))


def _join(a, b, c, gamma: float, out) -> None:
    """``out = logsumexp(a, b, c)`` (``max`` for DTW). Written out rather than with
    ``torch.logaddexp``: that one's ``exp`` takes a slow path for arguments below its range, which
    neighbouring cells' differences often are (5x the time); here they are clamped at -80, where
    the term is < 2e-35 of the largest, as good as 0."""
    torch.maximum(torch.maximum(a, b), c, out=out)
    if gamma == 0:
        return
    total = torch.sub(a, out).clamp_(min=-80.0).exp_()
    total += torch.sub(b, out).clamp_(min=-80.0).exp_()
    total += torch.sub(c, out).clamp_(min=-80.0).exp_()
    out += total.log_()


class _SoftDTW(torch.autograd.Function):
    """The recursion in ``q = -R / gamma`` (``-R`` for DTW), by anti-diagonal: ``[k, :, i]`` is
    cell ``(i, k - i)``, ``i = 0..n`` (diagonal-major, so each diagonal is contiguous). ``top``
    holds each cell's ``logsumexp`` (max, for DTW) of its predecessors' ``q``, so
    ``q = top - cost / gamma``; the derivative of a cell's ``R`` in a predecessor's is
    ``exp(q(pred) - top(cell))`` (the indicator of the minimum, for DTW): the backward pass
    (Cuturi & Blondel's Algorithm 2) is three multiply-adds per diagonal."""

    @staticmethod
    def forward(ctx, x, y, xl, yl, gamma):
        b, n, m = x.shape[0], x.shape[1], y.shape[1]
        with torch.no_grad():
            cost = ((x * x).sum(-1)[:, :, None] + (y * y).sum(-1)[:, None, :]
                    - 2 * x @ y.transpose(1, 2)).clamp_min(0)  # fmt: skip
            k = torch.arange(n + m + 1, device=x.device)[:, None]
            i = torch.arange(n + 1, device=x.device)[None, :]
            valid = (i >= 1) & (k - i >= 1) & (k - i <= m)  # (K, n + 1): the grid's cells
            rows, cols = (i - 1).clamp(0, n - 1), (k - i - 1).clamp(0, m - 1)
            step = cost[:, rows, cols].transpose(0, 1)  # (K, B, n + 1): cost(i, k - i)
            step = torch.where(valid[:, None, :], step / gamma if gamma else step, BIG)
            q = torch.full((n + m + 1, b, n + 1), -BIG, dtype=x.dtype, device=x.device)
            q[0, :, 0] = 0
            top = torch.full_like(q, BIG)  # outside the grid: no derivative flows there
            for d in range(2, n + m + 1):
                lo, hi = max(1, d - m), min(n, d - 1) + 1  # the grid's cells on diagonal d
                # predecessors of (i, j): (i-1, j-1) on d - 2; (i-1, j) and (i, j-1) on d - 1
                preds = (q[d - 2, :, lo - 1 : hi - 1], q[d - 1, :, lo - 1 : hi - 1],
                         q[d - 1, :, lo:hi])  # fmt: skip
                _join(*preds, gamma, out=top[d, :, lo:hi])
                torch.sub(top[d, :, lo:hi], step[d, :, lo:hi], out=q[d, :, lo:hi])
            end = q[xl + yl, torch.arange(b, device=x.device), xl]
        ctx.save_for_backward(x, y, xl, yl, q, top)
        ctx.gamma = gamma
        return -end * gamma if gamma else -end

    @staticmethod
    def backward(ctx, grad):
        x, y, xl, yl, q, top = ctx.saved_tensors
        gamma, (b, n, m) = ctx.gamma, (x.shape[0], x.shape[1], y.shape[1])

        def weight(cells, successors):  # d R(successor) / d R(cell), contiguous
            if gamma == 0:
                return (cells == successors).to(q.dtype)
            # exp's slow path for arguments far below its range would cost 5x: below -80 the
            # weight is < 2e-35, as good as 0 (the exact value is at most 1)
            return torch.sub(cells, successors).clamp_(-80.0, 0.0).exp_()

        # successors of (i, j) on diagonal d: (i+1, j) [d+1, i+1], (i, j+1) [d+1, i],
        # (i+1, j+1) [d+2, i+1]
        down = weight(q[:-1, :, :-1], top[1:, :, 1:])
        right = weight(q[:-1], top[1:])
        both = weight(q[:-2, :, :-1], top[2:, :, 1:])
        e = torch.zeros_like(q)  # d R(end) / d R(cell)
        e[xl + yl, torch.arange(b, device=x.device), xl] = 1
        for d in range(n + m - 1, 1, -1):
            lo, hi = max(1, d - m), min(n, d - 1) + 1  # the grid's cells on diagonal d
            inner = min(hi, n)  # those with an i + 1 <= n
            e[d, :, lo:inner].addcmul_(e[d + 1, :, lo + 1 : inner + 1], down[d, :, lo:inner])
            e[d, :, lo:hi].addcmul_(e[d + 1, :, lo:hi], right[d, :, lo:hi])
            if d + 2 <= n + m:
                e[d, :, lo:inner].addcmul_(e[d + 2, :, lo + 1 : inner + 1], both[d, :, lo:inner])
        gi = torch.arange(1, n + 1, device=x.device)[:, None]
        gj = torch.arange(1, m + 1, device=x.device)[None, :]
        g = e[gi + gj, :, gi.expand(n, m)].permute(2, 0, 1)  # (B, n, m): d R(end) / d cost
        g = g * grad[:, None, None]
        grad_x = 2 * (x * g.sum(2, keepdim=True) - g @ y)
        grad_y = 2 * (y * g.sum(1)[:, :, None] - g.transpose(1, 2) @ x)
        return grad_x, grad_y, None, None, None


class _HiddenStates:
    """Records the output of a recurrent layer during one forward (a temporary hook)."""

    def __init__(self, model):
        self.out = None
        rnn = getattr(getattr(model, "encoder", None), "rnn", None)
        if rnn is None:
            raise TypeError(
                "dt2w needs clstm's sequence models (an `encoder` with a recurrent layer); "
                f"{type(model).__name__} has none"
            )
        self._handle = rnn.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        out = output[0]
        self.out = pad_packed_sequence(out, batch_first=True)[0] if isinstance(
            out, PackedSequence) else out  # fmt: skip

    def remove(self) -> torch.Tensor:
        self._handle.remove()
        return self.out


class DT2WPlugin(LwFPlugin):
    """LwF plus soft-DTW feature-map distillation and prototype augmentation (module docstring).

    :param alpha: weight of the output distillation (TSCIL's ``lambda_kd_lwf``, default 1);
    :param temperature: its temperature (2);
    :param fmap: weight of the soft-DTW term (``lambda_kd_fmap``, 1e-2);
    :param gamma: soft-DTW's smoothing (1);
    :param proto_aug: weight of the prototype-augmentation term (``lambda_protoAug``, 100);
    :param adaptive: TSCIL's ``adaptive_weight`` (False).
    """

    def __init__(self, alpha=1.0, temperature=2.0, fmap=1e-2, gamma=1.0, proto_aug=100.0,
                 adaptive=False):  # fmt: skip
        super().__init__(alpha=alpha, temperature=temperature)
        self.fmap, self.gamma, self.proto_aug, self.adaptive = fmap, gamma, proto_aug, adaptive
        self.prototypes: dict[int, torch.Tensor] = {}  # class -> mean encoder feature
        self.radius: float | None = None
        self._student, self._student_states = None, None
        self.terms: dict = {}  # the last batch's terms, detached tensors (for inspection)

    def before_forward(self, strategy, **kwargs):
        if self.lwf.prev_model is not None and self.fmap:
            self._student = _HiddenStates(strategy.model)

    def after_forward(self, strategy, **kwargs):
        if self._student is not None:
            self._student_states, self._student = self._student.remove(), None

    def before_backward(self, strategy, **kwargs):
        prev = self.lwf.prev_model
        if prev is None:  # the first experience: nothing to distil
            return
        ce, x = strategy.loss, strategy.mb_x
        teacher = _HiddenStates(prev) if self.fmap else None
        from clstm.targets import kind_of

        self.lwf.kind, self.lwf.steps = kind_of(strategy.mb_y), None
        try:
            kd = self.lwf(x, strategy.mb_output, strategy.model)  # LwF: alpha * KD
        finally:
            teacher_states = teacher.remove() if teacher is not None else None
        extra = kd
        self.terms = {"kd": torch.as_tensor(kd).detach()}
        if self.fmap:
            lengths = x[..., -1].sum(dim=1).long()
            student, self._student_states = self._student_states, None  # no graph kept
            distance = soft_dtw(student, teacher_states.detach(), lengths, lengths, self.gamma)
            extra = extra + self.fmap * distance.mean()
            self.terms["fmap"] = distance.mean().detach()
        if self.proto_aug and self.prototypes:
            aug = self._augmentation_loss(strategy)
            extra = extra + self.proto_aug * aug
            self.terms["proto_aug"] = aug.detach()
        if self.adaptive:
            w = 1.0 / (strategy.clock.train_exp_counter + 1)
            strategy.loss = w * ce + (1 - w) * extra
        else:
            strategy.loss = ce + extra

    def _augmentation_loss(self, strategy) -> torch.Tensor:
        """CE of the head on ``batch`` prototypes of old classes, drawn uniformly, plus noise."""
        classes = torch.tensor(sorted(self.prototypes))
        pick = classes[torch.randint(len(classes), (len(strategy.mb_x),))]
        protos = torch.stack([self.prototypes[int(c)] for c in classes])
        rows = torch.searchsorted(classes, pick)
        features = protos[rows] + torch.randn(len(pick), protos.shape[1]) * self.radius
        device = strategy.device
        logits = strategy.model.head(features.to(device))
        return F.cross_entropy(logits, pick.to(device))

    def after_training_exp(self, strategy, **kwargs):
        super().after_training_exp(strategy, **kwargs)  # LwF: the previous model, its classes
        if self.proto_aug:
            self._keep_prototypes(strategy)

    def _keep_prototypes(self, strategy) -> None:
        from clstm.plugins.herding import sequence_features

        data = strategy.experience.dataset
        features = sequence_features(strategy.model, data.eval(), strategy.eval_mb_size,
                                     strategy.device).double()  # fmt: skip
        spreads = []
        for c, indices in sorted(data.targets.val_to_idx.items()):
            f = features[torch.as_tensor(indices)]
            self.prototypes[int(c)] = f.mean(dim=0).float()
            if len(f) > 1:
                spreads.append(torch.trace(torch.cov(f.T)) / f.shape[1])
        if self.radius is None:  # from the first experience's classes (TSCIL)
            self.radius = float(torch.stack(spreads).mean().sqrt()) if spreads else 0.0
