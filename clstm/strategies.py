"""Registry of continual-learning strategies: ``strategy.name`` -> config class and builder.

Each strategy is an Avalanche strategy with clstm's :class:`~clstm.plugins.LSTMPlugin` and
:class:`~clstm.plugins.DivergenceGuard` composed in. Adding a strategy = its config dataclass and
builder function plus one line in :data:`STRATEGIES`. Avalanche is imported only when a strategy
is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from clstm.config import ConfigError, ExperimentConfig, param


@dataclass(frozen=True)
class NaiveConfig:
    """Fine-tuning: no protection against forgetting (the lower bound of a comparison)."""

    name: Literal["naive"] = param("naive", "strategy")


def _build_naive(config: NaiveConfig, **common: Any):
    from avalanche.training import Naive

    return Naive(**common)


#: strategy name -> (config class, builder(config, **common Avalanche arguments), description)
STRATEGIES: dict[str, tuple[type, Callable[..., Any], str]] = {
    "naive": (NaiveConfig, _build_naive, "fine-tuning on each experience in turn (lower bound)"),
}


def strategy_config_class(name: str) -> type:
    """The config dataclass of strategy ``name``; a clear error for an unknown name."""
    if name not in STRATEGIES:
        raise ConfigError(
            f"strategy.name: unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}"
        )
    return STRATEGIES[name][0]


def make_optimizer(train, parameters):
    """The torch optimizer described by a :class:`clstm.config.TrainConfig`."""
    import torch

    if train.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=train.lr, weight_decay=train.weight_decay)
    return torch.optim.SGD(
        parameters, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay
    )


def build_strategy(
    config: ExperimentConfig,
    *,
    model,
    device,
    evaluator,
    plugins: Sequence[Any] = (),
):
    """The Avalanche strategy for ``config``, with the LSTM plugin and divergence guard added.

    ``plugins`` are appended after clstm's own (e.g. test probes or a user's plugins).
    """
    import torch

    from clstm.plugins import DivergenceGuard, LengthBucketingPlugin, LSTMPlugin

    train = config.train
    lstm_plugin = LSTMPlugin(
        lr_schedule=train.lr_schedule,
        epochs=train.epochs,
        lr_step_size=train.lr_step_size,
        lr_gamma=train.lr_gamma,
        optimizer_state=train.optimizer_state,
        grad_clip=train.grad_clip,
    )
    common = dict(
        model=model,
        optimizer=make_optimizer(train, model.parameters()),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=train.batch_size,
        train_epochs=train.epochs,
        eval_mb_size=config.eval.batch_size,
        device=device,
        plugins=[
            lstm_plugin,
            DivergenceGuard(),
            *([LengthBucketingPlugin()] if train.length_bucketing else []),
            *plugins,
        ],
        evaluator=evaluator,
        eval_every=-1,
    )
    _, builder, _ = STRATEGIES[config.strategy.name]
    return builder(config.strategy, **common)
