"""``TorchSIPlugin``: Avalanche's synaptic intelligence with its importance update in torch."""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin, SynapticIntelligencePlugin


class TorchSIPlugin(SynapticIntelligencePlugin):
    """Avalanche's ``SynapticIntelligencePlugin`` whose end-of-experience update uses torch.

    Why: Avalanche 0.6's ``update_ewc_data`` squares parameter differences with ``np.square`` on
    torch tensors. NumPy 2 warns on every call (``__array_wrap__`` deprecation) and a CUDA tensor
    cannot become a NumPy array at all, so SI fails on GPU. The update below is the same formula
    (Zenke et al. 2017, eq. 5: ``omega += c * trajectory / (delta_theta^2 + eps)``, clipped, sign
    flipped as Avalanche does) with ``torch.square``. Avalanche calls the update by class name, so
    the hook that calls it is overridden too.
    """

    def after_training_exp(self, strategy, **kwargs):
        """Runs after each training experience: accumulates each weight's importance."""
        SupervisedPlugin.after_training_exp(self, strategy, **kwargs)
        self._update_importance(strategy.model, clip_to=0.001, c=1, eps=self.eps)

    @torch.no_grad()
    def _update_importance(self, net, clip_to: float, c: float, eps: float) -> None:
        ewc_data, syn_data = self.ewc_data, self.syn_data
        SynapticIntelligencePlugin.extract_weights(
            net, syn_data["new_theta"], self.excluded_parameters
        )
        for name in syn_data["cum_trajectory"]:
            delta = syn_data["new_theta"][name].data - ewc_data[0][name].data
            syn_data["cum_trajectory"][name].data += (
                c * syn_data["trajectory"][name].data / (torch.square(delta) + eps)
            )
        for name in syn_data["cum_trajectory"]:
            importance = -syn_data["cum_trajectory"][name].data  # Avalanche's sign convention
            ewc_data[1][name].data = torch.clamp(importance.clone(), max=clip_to)
            ewc_data[0][name].data = syn_data["new_theta"][name].data.clone()
