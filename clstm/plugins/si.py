"""``TorchSIPlugin``: Avalanche's synaptic intelligence, made to work on CPU and on CUDA, with
the importance variants of Ehret et al. (2021) as options."""

from __future__ import annotations

import math

import torch
from avalanche.training.plugins import SupervisedPlugin, SynapticIntelligencePlugin

_allowed = SynapticIntelligencePlugin.allowed_parameters


@torch.no_grad()
def _copy_into(target, tensors) -> None:
    """Store each ``(name, tensor)`` flattened, as a CPU copy (never a view of live memory)."""
    for name, tensor in tensors:
        target[name].data = tensor.detach().flatten().to("cpu", copy=True)


class TorchSIPlugin(SynapticIntelligencePlugin):
    """Avalanche's ``SynapticIntelligencePlugin`` with two Avalanche 0.6 bugs fixed.

    1. **On CPU SI does nothing.** Avalanche snapshots weights with
       ``param.detach().cpu().flatten()``; on the CPU ``.cpu()`` and ``.flatten()`` return views of
       the live parameter, so the "old" weights move with every optimizer step: the path integral
       (trajectory) and the penalty's anchor difference are both exactly zero, and SI silently
       trains like ``naive``. Here every snapshot is a copy.
    2. **On CUDA SI crashes, and NumPy 2 warns.** The end-of-experience update squares parameter
       differences with ``np.square`` on torch tensors; a CUDA tensor cannot become a NumPy array.
       Here it is ``torch.square``; the formula is Avalanche's (Zenke et al. 2017, eq. 5:
       ``omega += c * trajectory / (delta^2 + eps)``, clipped, Avalanche's sign convention).

    Avalanche calls these helpers by class name, so the hooks that call them are overridden.

    Options (Avalanche's behaviour by default):

    - ``max_importance``: Avalanche caps each weight's importance at 0.001 (``clip_to``); with a
      penalty ``lambda / 2 * sum importance * (theta - theta*)^2`` that cap bounds how much any
      weight can be protected. ``None``: no cap (Zenke et al. 2017; Ehret et al. 2021).
    - ``nonnegative``: each experience's importance increment is clamped at 0 before it is added
      (Ehret et al.'s ``utils/si_regularizer.py``), so that no weight is pushed *away* from its
      old value; Avalanche adds it unclamped.
    - ``task_loss_only``: the path integral uses the gradient of the task loss alone (the
      strategy's ``criterion()``, without the penalties plugins add) times the update the
      optimizer would make from that gradient alone (Adam's or SGD's, from its current state),
      as Ehret et al.'s ``--si_task_loss_only``; by default it uses the gradient of the whole
      loss after clipping times the actual change of each weight. In clstm's strategies the
      task gradient costs no second backward pass through the model (it is taken first and the
      penalties' added to it); composed into another training loop, or after a plugin that
      changed the loss, it takes one.
    """

    def __init__(
        self,
        si_lambda: float,
        eps: float = 1e-7,
        *,
        max_importance: float | None = 0.001,
        nonnegative: bool = False,
        task_loss_only: bool = False,
    ):
        super().__init__(si_lambda=si_lambda, eps=eps)
        self.max_importance = max_importance
        self.nonnegative = nonnegative
        self.task_loss_only = task_loss_only
        self._task_step = None  # (name, task gradient, would-be update) of the iteration

    def before_training_exp(self, strategy, **kwargs):
        """Runs before each training experience: the anchor weights (a copy) and a new path."""
        super().before_training_exp(strategy, **kwargs)  # allocates Avalanche's structures
        _copy_into(self.ewc_data[0], _allowed(strategy.model, self.excluded_parameters))

    def before_training_iteration(self, strategy, **kwargs):
        """Runs before each update: remembers the weights (a copy)."""
        if not self.task_loss_only:
            _copy_into(
                self.syn_data["old_theta"], _allowed(strategy.model, self.excluded_parameters)
            )

    def before_backward(self, strategy, **kwargs):
        """Runs before the backward pass: (task_loss_only) the task loss's gradient and the update
        it alone would make, then the penalty (Avalanche's)."""
        if self.task_loss_only:
            params = _allowed(strategy.model, self.excluded_parameters)
            if _loss_is_the_task_loss(strategy):
                grads = _task_gradient_once(strategy, params)
            else:  # a second backward pass through the model, for the task loss alone
                grads = torch.autograd.grad(
                    strategy.criterion(),
                    [p for _, p in params],
                    retain_graph=True,
                    allow_unused=True,
                )
            steps = would_be_update(strategy.optimizer, [p for _, p in params], grads)
            self._task_step = [
                (name, grad, step)
                for (name, _), grad, step in zip(params, grads, steps, strict=True)
                if grad is not None
            ]
        super().before_backward(strategy, **kwargs)

    def after_training_iteration(self, strategy, **kwargs):
        """Runs after each update: adds ``grad * delta_theta`` to each weight's path integral."""
        if self.task_loss_only:
            trajectory = self.syn_data["trajectory"]
            for name, grad, step in self._task_step or ():
                trajectory[name].data += (grad * step).flatten().to(trajectory[name].data.device)
            self._task_step = None
            return
        params = _allowed(strategy.model, self.excluded_parameters)
        _copy_into(self.syn_data["new_theta"], params)
        _copy_into(self.syn_data["grad"], [(n, p.grad) for n, p in params if p.grad is not None])
        for name, trajectory in self.syn_data["trajectory"].items():
            step = self.syn_data["new_theta"][name].data - self.syn_data["old_theta"][name].data
            trajectory.data += self.syn_data["grad"][name].data * step

    def after_training_exp(self, strategy, **kwargs):
        """Runs after each training experience: accumulates each weight's importance."""
        SupervisedPlugin.after_training_exp(self, strategy, **kwargs)
        self._update_importance(strategy.model, clip_to=self.max_importance, c=1, eps=self.eps)

    @torch.no_grad()
    def _update_importance(self, net, clip_to: float | None, c: float, eps: float) -> None:
        ewc_data, syn_data = self.ewc_data, self.syn_data
        _copy_into(syn_data["new_theta"], _allowed(net, self.excluded_parameters))
        for name in syn_data["cum_trajectory"]:
            delta = syn_data["new_theta"][name].data - ewc_data[0][name].data
            increment = c * syn_data["trajectory"][name].data / (torch.square(delta) + eps)
            if self.nonnegative:  # importance is -cum_trajectory: its increment -increment >= 0
                increment = increment.clamp(max=0)
            syn_data["cum_trajectory"][name].data += increment
        for name in syn_data["cum_trajectory"]:
            importance = -syn_data["cum_trajectory"][name].data  # Avalanche's sign convention
            if clip_to is not None:
                importance = torch.clamp(importance, max=clip_to)
            ewc_data[1][name].data = importance.clone()
            ewc_data[0][name].data = syn_data["new_theta"][name].data.clone()


def _loss_is_the_task_loss(strategy) -> bool:
    """Whether ``strategy.loss`` is still the criterion's output as clstm's training loop
    computed it (:class:`clstm.strategies.lean.LeanIteration` records it with its version): no
    plugin before this one has added a penalty to it, in place or not."""
    recorded = getattr(strategy, "task_loss", None)
    return (
        recorded is not None
        and recorded[0] is strategy.loss
        and (strategy.loss._version == recorded[1])
    )


def _task_gradient_once(strategy, params) -> tuple:
    """The task loss's gradient for ``params``, with one backward pass through the model.

    The gradient of ``strategy.loss`` (the task loss alone, see
    :func:`_loss_is_the_task_loss`) is taken for every trainable weight, and the loss is then
    replaced by one with the same value whose gradient is that one exactly: ``sum(w * g)`` for
    each weight ``w`` and its gradient ``g``, less its own value. The penalties that plugins add
    afterwards (SI's, the orthogonal regulariser's, a user's) go on that loss as they would on
    the original, and the strategy's backward pass adds their gradients to ``g`` without running
    through the model a second time (it did: Ehret et al.'s code also takes the task gradient
    first and the regularisers' after it).
    """
    weights = [p for p in strategy.model.parameters() if p.requires_grad]
    task = strategy.loss
    grads = torch.autograd.grad(task, weights, allow_unused=True)
    terms = [(w * g).sum() for w, g in zip(weights, grads, strict=True) if g is not None]
    if terms:  # (none: no weight is trained, and the loss is left as it is)
        linear = torch.stack(terms).sum()
        strategy.loss = task.detach() + (linear - linear.detach())
    by_weight = {id(w): g for w, g in zip(weights, grads, strict=True)}
    return tuple(by_weight.get(id(p)) for _, p in params)


@torch.no_grad()
def would_be_update(optimizer, params, grads) -> list[torch.Tensor | None]:
    """The change ``optimizer.step()`` would make to each of ``params`` if their gradients were
    ``grads``, from the optimizer's current state, which is left unchanged (Adam, and SGD with or
    without momentum: clstm's ``train.optimizer`` choices)."""
    if isinstance(optimizer, torch.optim.Adam):
        update = _adam_update
    elif isinstance(optimizer, torch.optim.SGD):
        update = _sgd_update
    else:
        raise ValueError(
            f"si.task_loss_only needs the update an Adam or SGD optimizer would make; "
            f"{type(optimizer).__name__} is neither: set train.optimizer to adam or sgd"
        )
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    steps = []
    for p, grad in zip(params, grads, strict=True):
        group = groups.get(id(p))
        missing = grad is None or group is None
        steps.append(None if missing else update(p, grad, optimizer.state.get(p, {}), group))
    return steps


def _adam_update(p, grad, state, group) -> torch.Tensor:
    if group.get("amsgrad") or group.get("maximize") or group.get("decoupled_weight_decay"):
        raise ValueError(
            "si.task_loss_only: Adam with amsgrad, maximize or decoupled weight decay (AdamW) "
            "is not supported"
        )
    beta1, beta2 = group["betas"]
    if group["weight_decay"]:
        grad = grad + group["weight_decay"] * p
    step = int(state["step"]) + 1 if "step" in state else 1
    m = beta1 * state.get("exp_avg", 0.0) + (1 - beta1) * grad  # moments start at zero
    v = beta2 * state.get("exp_avg_sq", 0.0) + (1 - beta2) * grad * grad
    lr = float(group["lr"])
    denom = v.sqrt() / math.sqrt(1 - beta2**step) + group["eps"]
    return -(lr / (1 - beta1**step)) * m / denom


def _sgd_update(p, grad, state, group) -> torch.Tensor:
    if group.get("nesterov") or group.get("maximize"):
        raise ValueError("si.task_loss_only: SGD with nesterov or maximize is not supported")
    if group["weight_decay"]:
        grad = grad + group["weight_decay"] * p
    momentum = group["momentum"]
    buf = state.get("momentum_buffer")
    if momentum and buf is not None:
        grad = buf * momentum + (1 - group["dampening"]) * grad
    return -float(group["lr"]) * grad
