"""An Avalanche strategy for an experiment: the method's, with clstm's plugins composed in."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from clstm.strategies.registry import STRATEGIES


def make_optimizer(train, parameters):
    """The torch optimizer described by a :class:`clstm.config.TrainConfig`."""
    import torch

    if train.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=train.lr, weight_decay=train.weight_decay)
    return torch.optim.SGD(
        parameters, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay
    )


def build_strategy(
    config,
    *,
    model,
    device,
    evaluator,
    plugins: Sequence[Any] = (),
    windows_per_series: int | None = None,
    target="sequence",
):
    """The Avalanche strategy for ``config``, with clstm's plugins added before the method's.

    ``plugins`` are appended after clstm's own (e.g. test probes or a user's plugins).
    ``windows_per_series`` is needed with ``train.state: stateful``; ``target`` is the
    benchmark's target kind (a :class:`clstm.targets.TargetKind` or its name), which gives the
    loss and replay's memory policy.
    """
    from clstm.plugins import DivergenceGuard, LengthBucketingPlugin, LSTMPlugin
    from clstm.plugins.loading import StackedEvalLoaderPlugin
    from clstm.plugins.stateful import StatefulWindowsPlugin
    from clstm.plugins.stopping import StopPlugin
    from clstm.targets import kind_named

    kind = kind_named(target) if isinstance(target, str) else target
    train = config.train
    extra = []
    if train.orthogonal_reg > 0:
        from clstm.plugins.orthogonal import OrthogonalRecurrentPlugin

        extra.append(OrthogonalRecurrentPlugin(train.orthogonal_reg))
    if train.state == "stateful":
        batching = [StatefulWindowsPlugin(windows_per_series)]
    else:
        batching = [LengthBucketingPlugin()] if train.length_bucketing else []
    online = getattr(config, "online", None)
    hidden = bool(online and online.batch and online.boundaries == "hidden")
    lstm_plugin = LSTMPlugin(
        lr_schedule=train.lr_schedule,
        epochs=train.epochs,
        lr_step_size=train.lr_step_size,
        lr_gamma=train.lr_gamma,
        # hidden boundaries: the learner cannot know when to reset (docs/online.md)
        optimizer_state="keep" if hidden else train.optimizer_state,
        grad_clip=train.grad_clip,
    )
    common = dict(
        model=model,
        optimizer=make_optimizer(train, model.parameters()),
        criterion=kind.criterion(),
        train_mb_size=train.batch_size,
        train_epochs=train.epochs,
        eval_mb_size=config.eval.batch_size,
        device=device,
        plugins=[
            lstm_plugin,
            DivergenceGuard(),
            StopPlugin(),
            StackedEvalLoaderPlugin(),
            *batching,
            *extra,
            *plugins,
        ],
        evaluator=evaluator,
        eval_every=-1,
    )
    options = config.strategy
    if online and online.batch and options.name == "replay":  # ER with a reservoir, per batch
        from clstm.plugins.online import OnlineReplayPlugin
        from clstm.strategies.builders import with_plugin

        plugin = OnlineReplayPlugin(mem_size=options.mem_size, batch_size_mem=None,
                                    seed=config.seed)  # fmt: skip
        return with_plugin(plugin, common)
    if getattr(options, "policy", None) == "auto":  # replay: the memory policy of the targets
        policy = "class_balanced" if kind.classes else "experience_balanced"
        options = dataclasses.replace(options, policy=policy)
    return STRATEGIES[config.strategy.name].build(options, **common)
