"""``TorchSIPlugin``: Avalanche's synaptic intelligence, made to work on CPU and on CUDA."""

from __future__ import annotations

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
    """

    def before_training_exp(self, strategy, **kwargs):
        """Runs before each training experience: the anchor weights (a copy) and a new path."""
        super().before_training_exp(strategy, **kwargs)  # allocates Avalanche's structures
        _copy_into(self.ewc_data[0], _allowed(strategy.model, self.excluded_parameters))

    def before_training_iteration(self, strategy, **kwargs):
        """Runs before each update: remembers the weights (a copy)."""
        _copy_into(self.syn_data["old_theta"], _allowed(strategy.model, self.excluded_parameters))

    def after_training_iteration(self, strategy, **kwargs):
        """Runs after each update: adds ``grad * delta_theta`` to each weight's path integral."""
        params = _allowed(strategy.model, self.excluded_parameters)
        _copy_into(self.syn_data["new_theta"], params)
        _copy_into(self.syn_data["grad"], [(n, p.grad) for n, p in params if p.grad is not None])
        for name, trajectory in self.syn_data["trajectory"].items():
            step = self.syn_data["new_theta"][name].data - self.syn_data["old_theta"][name].data
            trajectory.data += self.syn_data["grad"][name].data * step

    def after_training_exp(self, strategy, **kwargs):
        """Runs after each training experience: accumulates each weight's importance."""
        SupervisedPlugin.after_training_exp(self, strategy, **kwargs)
        self._update_importance(strategy.model, clip_to=0.001, c=1, eps=self.eps)

    @torch.no_grad()
    def _update_importance(self, net, clip_to: float, c: float, eps: float) -> None:
        ewc_data, syn_data = self.ewc_data, self.syn_data
        _copy_into(syn_data["new_theta"], _allowed(net, self.excluded_parameters))
        for name in syn_data["cum_trajectory"]:
            delta = syn_data["new_theta"][name].data - ewc_data[0][name].data
            syn_data["cum_trajectory"][name].data += (
                c * syn_data["trajectory"][name].data / (torch.square(delta) + eps)
            )
        for name in syn_data["cum_trajectory"]:
            importance = -syn_data["cum_trajectory"][name].data  # Avalanche's sign convention
            ewc_data[1][name].data = torch.clamp(importance.clone(), max=clip_to)
            ewc_data[0][name].data = syn_data["new_theta"][name].data.clone()
