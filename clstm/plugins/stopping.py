"""``StopPlugin``: stop a run at the next iteration when a stop was requested (see
:mod:`clstm.run.stopping`)."""

from __future__ import annotations

from avalanche.training.plugins import SupervisedPlugin

from clstm.run import stopping


class StopPlugin(SupervisedPlugin):
    """Raises :class:`clstm.errors.Interrupted` at a safe point once a stop was requested.

    Checked after every training iteration (after the optimizer step: the weights are those of a
    whole step) and every evaluation iteration; the runner records the interruption and the run
    can be resumed from its last checkpoint.
    """

    def before_training_exp(self, strategy, **kwargs):
        """Runs before each training experience."""
        stopping.check()

    def after_training_iteration(self, strategy, **kwargs):
        """Runs after each optimizer step."""
        stopping.check()

    def after_eval_iteration(self, strategy, **kwargs):
        """Runs after each evaluation mini-batch."""
        stopping.check()
