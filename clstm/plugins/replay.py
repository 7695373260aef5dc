"""Avalanche's replay and GDumb plugins without their unsilenceable per-experience warning."""

from __future__ import annotations

from avalanche.training.plugins import GDumbPlugin, ReplayPlugin


class QuietReplayPlugin(ReplayPlugin):
    """Avalanche's ``ReplayPlugin``, updating its buffer through the non-deprecated API.

    Why: in Avalanche 0.6, ``ReplayPlugin.after_training_exp`` calls the storage policy's
    deprecated ``update``, whose ``@deprecated`` decorator resets the warning filters on every call,
    so a ``DeprecationWarning`` is printed after every experience and users cannot silence it.
    ``update`` itself only calls ``post_adapt``; this plugin calls ``post_adapt`` directly.
    """

    def after_training_exp(self, strategy, **kwargs):
        """Runs after each training experience: adds its samples to the buffer."""
        self.storage_policy.post_adapt(strategy, strategy.experience)


class QuietGDumbPlugin(GDumbPlugin):
    """Avalanche's ``GDumbPlugin``, filling its buffer through the non-deprecated API (same reason
    as :class:`QuietReplayPlugin`)."""

    def after_train_dataset_adaptation(self, strategy, **kwargs):
        """Runs after the training data is set up: adds the experience to the buffer and
        trains on the buffer (GDumb trains on its memory only)."""
        self.storage_policy.post_adapt(strategy, strategy.experience)
        strategy.adapted_dataset = self.storage_policy.buffer
