"""``JointTrainingOnce``: Avalanche's joint (offline) training, counted as all experiences."""

from __future__ import annotations

from avalanche.training import JointTraining

from clstm.strategies.lean import LeanIteration


class JointTrainingOnce(LeanIteration, JointTraining):
    """Avalanche's ``JointTraining`` (one training run on the concatenation of all experiences).

    Avalanche's clock counts that run as one training experience. After training on a stream of
    ``T`` experiences this sets the count to ``T``, so evaluation plugins file the evaluation that
    follows as "after all ``T`` experiences" (the last row of the accuracy matrix, TensorBoard step
    ``T``); there are no intermediate models, so the earlier rows stay unmeasured.
    """

    def model_adaptation(self, model=None):
        """Adapts the model to every training experience and to the current one.

        Avalanche's ``JointTraining.model_adaptation`` adapts only to the training experiences,
        which are unknown before ``train`` is called, so evaluating before training (the initial
        row) meets heads without the evaluated classes. Here the experience being evaluated is
        included, through Avalanche's recursive ``avalanche_model_adaptation`` as other
        strategies do.
        """
        from avalanche.models.dynamic_modules import avalanche_model_adaptation

        model = self.model if model is None else model
        for experience in [*self._experiences, self.experience]:
            avalanche_model_adaptation(model, experience)
        return model.to(self.device)

    def train(self, experiences, eval_streams=None, **kwargs):
        experiences = list(experiences) if not hasattr(experiences, "dataset") else [experiences]
        result = super().train(experiences, eval_streams, **kwargs)
        self.clock.train_exp_counter = len(experiences)
        return result
