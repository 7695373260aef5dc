"""``LeanEvaluationPlugin``: Avalanche's ``EvaluationPlugin`` without per-callback busywork."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from avalanche.core import BasePlugin, BaseSGDPlugin, SupervisedPlugin
from avalanche.evaluation import PluginMetric
from avalanche.logging import BaseLogger
from avalanche.training.plugins import EvaluationPlugin

# Classes whose callbacks are no-ops: a metric or logger inheriting a callback from one of them
# does nothing in it.
_NO_OP_BASES = (PluginMetric, BaseLogger, BasePlugin, BaseSGDPlugin, SupervisedPlugin)


@cache
def _listens(cls: type, callback: str) -> bool:
    """Whether instances of ``cls`` do anything in ``callback``."""
    for klass in cls.__mro__:
        if callback in vars(klass):
            return klass not in _NO_OP_BASES
    return False


class LeanEvaluationPlugin(EvaluationPlugin):
    """Avalanche's ``EvaluationPlugin``, skipping callbacks no metric or logger implements.

    Why: Avalanche 0.6's plugin, on *every* callback (about eight per training iteration), wraps
    the current experience in a logging copy, offers the callback to every metric and hands every
    logger an empty list, although most metrics implement only a few callbacks (clstm's implement
    two of the eight per training iteration). This subclass does exactly the same for callbacks
    that some metric or logger implements, and nothing for the others (whose calls would all
    have been no-ops).
    """

    # Avalanche's __getattribute__ runs Python code on every attribute access, to build
    # forwarding closures for callbacks it has no method for; this class has a method for each.
    __getattribute__ = object.__getattribute__

    def listens(self, callback: str) -> bool:
        """Whether some metric or logger implements ``callback`` (the lean loop calls only then)."""
        listened = self.__dict__.get("_listened")
        if listened is None:  # metrics and loggers are fixed once the strategy runs
            listened = self.__dict__["_listened"] = {}
        active = listened.get(callback)
        if active is None:
            active = listened[callback] = any(
                _listens(type(x), callback) for x in [*self.metrics, *self.loggers]
            )
        return active

    def _update_metrics_and_loggers(self, strategy, callback: str):
        """Avalanche's method, doing the same for the metrics and loggers that implement
        ``callback`` (the others' calls are no-ops), with the experience's logging view made
        once per experience (Avalanche makes it on every callback: ~30 µs, eight times per
        training iteration)."""
        if not self.listens(callback):
            return []
        original = strategy.experience
        if original is not None:
            view = self.__dict__.get("_logging_view")
            if view is None or view[0] is not original:
                view = self.__dict__["_logging_view"] = (original, original.logging())
            strategy.experience = view[1]  # Avalanche's "set experience to LOGGING"
        try:
            if not self._active:
                return []
            plan = self.__dict__.setdefault("_plan", {})
            if callback not in plan:  # metrics and loggers are fixed once the strategy runs
                plan[callback] = (
                    [getattr(m, callback) for m in self.metrics if _listens(type(m), callback)],
                    [(lg.log_metrics, getattr(lg, callback, None)) for lg in self.loggers],
                )
            metrics, loggers = plan[callback]
            for metric in metrics:
                result = metric(strategy)
                if result is None:  # most calls (an ABC isinstance check costs more)
                    continue
                if isinstance(result, Sequence):
                    for value in result:
                        self.publish_metric_value(value)
                else:
                    self.publish_metric_value(result)
            values = self._metric_values
            for log_metrics, on_callback in loggers:
                log_metrics(values)
                if on_callback is not None:
                    on_callback(strategy, values)
            self._metric_values = []
        finally:
            strategy.experience = original

    def __getstate__(self):  # checkpoints do not carry the logging view
        state = dict(self.__dict__)
        state.pop("_logging_view", None)
        state.pop("_plan", None)  # bound methods, made again after loading
        return state


def _forwarder(callback: str):
    def forward(self, strategy, **kwargs):
        return self._update_metrics_and_loggers(strategy, callback)

    forward.__name__ = callback
    forward.__doc__ = f"Offers ``{callback}`` to the metrics and loggers that implement it."
    return forward


# Avalanche's EvaluationPlugin has no methods for most callbacks: its __getattribute__ catches
# the AttributeError and builds a forwarding closure, twice per callback (hasattr, then getattr),
# eight callbacks per training iteration. Real methods skip the exception and the closures.
for _callback in dir(SupervisedPlugin):
    if _callback.startswith(("before_", "after_")) and _callback not in vars(EvaluationPlugin):
        setattr(LeanEvaluationPlugin, _callback, _forwarder(_callback))
