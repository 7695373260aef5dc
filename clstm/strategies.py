"""Registry of continual-learning strategies: ``strategy.name`` -> config, builder, scenarios.

Each strategy is an Avalanche strategy (or ``Naive`` plus an Avalanche plugin) with clstm's
:class:`~clstm.plugins.LSTMPlugin`, :class:`~clstm.plugins.DivergenceGuard` and, optionally,
:class:`~clstm.plugins.LengthBucketingPlugin` composed in. Adding a strategy = its config dataclass
and builder plus one entry in :data:`STRATEGIES`. Avalanche is imported only when a strategy is
built. The README's strategy table says where each default comes from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from clstm.errors import ConfigError
from clstm.schema import did_you_mean, param

if TYPE_CHECKING:
    from clstm.config import ExperimentConfig

ALL = ("domain", "task", "class")
TARGETS = ("sequence", "per_step", "per_step_bits", "regression")  # clstm.targets.KINDS


@dataclass(frozen=True)
class NaiveConfig:
    """Fine-tuning: no protection against forgetting (the lower bound of a comparison)."""

    name: Literal["naive"] = param("naive", "strategy")


@dataclass(frozen=True)
class JointConfig:
    """Offline training on all experiences at once (the usual upper bound)."""

    name: Literal["joint"] = param("joint", "strategy")


@dataclass(frozen=True)
class CumulativeConfig:
    """Each experience is trained on the union of all data seen so far."""

    name: Literal["cumulative"] = param("cumulative", "strategy")


@dataclass(frozen=True)
class ReplayConfig:
    """Experience replay from a fixed-size memory, mixed into every training batch."""

    name: Literal["replay"] = param("replay", "strategy")
    mem_size: int = param(200, "samples kept in memory, over all experiences", ge=1)
    policy: Literal["auto", "class_balanced", "experience_balanced", "reservoir"] = param(
        "auto",
        "which samples stay: equal share per class, equal share per experience, or reservoir "
        "sampling; auto: class_balanced for a class per sequence, else experience_balanced",
    )


@dataclass(frozen=True)
class EWCConfig:
    """Elastic weight consolidation: a Fisher-weighted quadratic penalty on moving weights."""

    name: Literal["ewc"] = param("ewc", "strategy")
    ewc_lambda: float = param(100.0, "penalty weight", ge=0.0)
    mode: Literal["separate", "online"] = param(
        "separate", "one penalty per experience, or online EWC (one decayed Fisher estimate)"
    )
    decay_factor: float = param(0.9, "online EWC: decay of the previous Fisher", gt=0.0, le=1.0)
    fisher: Literal["batch", "per_sample"] = param(
        "batch",
        "Fisher estimate: batch (Avalanche's: squared gradients of mini-batch mean losses, "
        "smaller by up to the batch size) or per_sample (the empirical Fisher, each sample's "
        "squared loss gradient, as Kirkpatrick et al. and Ehret et al.; one pass per sample)",
    )
    fisher_samples: int | None = param(
        None,
        "per_sample only: average over this many random training samples (Ehret et al.'s "
        "n_fisher); null: all of them",
        ge=1,
    )

    def __post_init__(self) -> None:
        if self.fisher_samples is not None and self.fisher != "per_sample":
            raise ValueError(
                "strategy.fisher_samples needs strategy.fisher: per_sample (the batch estimate "
                "reads every sample)"
            )


@dataclass(frozen=True)
class SIConfig:
    """Synaptic intelligence: path-integral importance of each weight."""

    name: Literal["si"] = param("si", "strategy")
    si_lambda: float = param(10.0, "penalty weight", ge=0.0)
    eps: float = param(1e-7, "damping of the importance denominator", gt=0.0)
    max_importance: float | None = param(
        0.001,
        "cap on each weight's importance (Avalanche's 0.001); null: no cap (Zenke et al., "
        "Ehret et al.)",
        gt=0.0,
    )
    nonnegative: bool = param(
        False, "clamp each experience's importance increment at 0 (Ehret et al.)"
    )
    task_loss_only: bool = param(
        False,
        "path integral of the task loss's gradient times the update it alone would make "
        "(Ehret et al.'s --si_task_loss_only)",
    )


@dataclass(frozen=True)
class MASConfig:
    """Memory-aware synapses: importance from the sensitivity of the output norm."""

    name: Literal["mas"] = param("mas", "strategy")
    lambda_reg: float = param(0.1, "penalty weight", ge=0.0)
    alpha: float = param(0.5, "update rate of the importance estimate", ge=0.0, le=1.0)


@dataclass(frozen=True)
class LwFConfig:
    """Learning without forgetting: distillation from the model after the previous experience."""

    name: Literal["lwf"] = param("lwf", "strategy")
    alpha: float = param(1.0, "weight of the distillation loss", ge=0.0)
    temperature: float = param(2.0, "softmax temperature of the distillation", gt=0.0)


@dataclass(frozen=True)
class GEMConfig:
    """Gradient episodic memory: project gradients so no stored experience's loss increases."""

    name: Literal["gem"] = param("gem", "strategy")
    patterns_per_exp: int = param(256, "samples kept per experience", ge=1)
    memory_strength: float = param(0.5, "margin gamma of the projection", ge=0.0)


@dataclass(frozen=True)
class AGEMConfig:
    """Averaged GEM: project onto one reference gradient from a random memory batch."""

    name: Literal["agem"] = param("agem", "strategy")
    patterns_per_exp: int = param(256, "samples kept per experience", ge=1)
    sample_size: int = param(256, "memory samples per reference gradient", ge=1)


@dataclass(frozen=True)
class GDumbConfig:
    """GDumb: keep a class-balanced memory; retrain from scratch on it at every experience."""

    name: Literal["gdumb"] = param("gdumb", "strategy")
    mem_size: int = param(200, "samples kept in memory", ge=1)


@dataclass(frozen=True)
class DERConfig:
    """Dark experience replay (DER++): replay stored samples with their logits and labels."""

    name: Literal["der"] = param("der", "strategy")
    mem_size: int = param(200, "samples kept in memory", ge=1)
    batch_size_mem: int | None = param(None, "memory batch size (null: train.batch_size)", ge=1)
    alpha: float = param(0.1, "weight of the logit-matching (MSE) term", ge=0.0)
    beta: float = param(0.5, "weight of the label term on memory samples", ge=0.0)


@dataclass(frozen=True)
class CoresetsConfig:
    """Replay of a random coreset per experience, trained to the previous model's outputs."""

    name: Literal["coresets"] = param("coresets", "strategy")
    coreset_size: int = param(100, "sequences kept per experience", ge=1)
    batch_size_mem: int | None = param(
        None,
        "replayed sequences per iteration, over all earlier experiences (null: train.batch_size)",
        ge=1,
    )
    alpha: float = param(1.0, "weight of the distillation term", ge=0.0)
    temperature: float = param(2.0, "distillation temperature", gt=0.0)


@dataclass(frozen=True)
class SeparateConfig:
    """One fresh model per experience, each experience evaluated with its own model."""

    name: Literal["separate"] = param("separate", "strategy")


def _naive(config, **common):
    from clstm.lean import LeanNaive as Naive

    return Naive(**common)


def _joint(config, **common):
    from clstm.joint import JointTrainingOnce

    return JointTrainingOnce(**common)


def _cumulative(config, **common):
    from clstm.lean import LeanCumulative as Cumulative

    return Cumulative(**common)


def _with_plugin(plugin, common, before: type | None = None):
    """``Naive`` with ``plugin`` added last, or just before the first plugin of type ``before``."""
    from clstm.lean import LeanNaive as Naive

    plugins = list(common["plugins"])
    at = next((i for i, p in enumerate(plugins) if before and isinstance(p, before)), len(plugins))
    plugins.insert(at, plugin)
    return Naive(**{**common, "plugins": plugins})


def _replay(config: ReplayConfig, **common):
    from avalanche.training.storage_policy import (
        ClassBalancedBuffer,
        ExperienceBalancedBuffer,
        ReservoirSamplingBuffer,
    )

    from clstm.plugins.replay import QuietReplayPlugin

    if config.policy == "class_balanced":
        policy = ClassBalancedBuffer(max_size=config.mem_size, adaptive_size=True)
    elif config.policy == "experience_balanced":
        policy = ExperienceBalancedBuffer(max_size=config.mem_size, adaptive_size=True)
    else:
        policy = ReservoirSamplingBuffer(max_size=config.mem_size)
    plugin = QuietReplayPlugin(mem_size=config.mem_size, storage_policy=policy)
    return _with_plugin(plugin, common)


def _ewc(config: EWCConfig, **common):
    from clstm.plugins.ewc import RecurrentEWCPlugin

    plugin = RecurrentEWCPlugin(
        ewc_lambda=config.ewc_lambda,
        mode=config.mode,
        decay_factor=config.decay_factor if config.mode == "online" else None,
        fisher=config.fisher,
        fisher_samples=config.fisher_samples,
    )
    return _with_plugin(plugin, common)


def _si(config: SIConfig, **common):
    from clstm.plugins.orthogonal import OrthogonalRecurrentPlugin
    from clstm.plugins.si import TorchSIPlugin

    options = {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}
    # before the orthogonal regulariser, so that SI sees the task loss alone and takes its
    # gradient (task_loss_only) without a second backward pass (clstm.plugins.si)
    return _with_plugin(TorchSIPlugin(**options), common, before=OrthogonalRecurrentPlugin)


def _mas(config: MASConfig, **common):
    from clstm.lean import LeanMAS as MAS

    return MAS(lambda_reg=config.lambda_reg, alpha=config.alpha, **common)


def _lwf(config: LwFConfig, **common):
    from clstm.plugins.lwf import LwFPlugin

    return _with_plugin(LwFPlugin(alpha=config.alpha, temperature=config.temperature), common)


def _gem(config: GEMConfig, **common):
    from clstm.lean import LeanGEM as GEM

    return GEM(
        patterns_per_exp=config.patterns_per_exp, memory_strength=config.memory_strength, **common
    )


def _agem(config: AGEMConfig, **common):
    from clstm.lean import LeanAGEM as AGEM

    return AGEM(patterns_per_exp=config.patterns_per_exp, sample_size=config.sample_size, **common)


def _gdumb(config: GDumbConfig, **common):
    from clstm.plugins.replay import QuietGDumbPlugin

    return _with_plugin(QuietGDumbPlugin(mem_size=config.mem_size), common)


def _der(config: DERConfig, **common):
    import torch
    from avalanche.training import DER

    from clstm.plugins.der import DERMaskedLogitsPlugin, TargetDER

    if not isinstance(common["criterion"], torch.nn.CrossEntropyLoss):  # not a class per sequence
        return TargetDER(
            mem_size=config.mem_size,
            batch_size_mem=config.batch_size_mem,
            alpha=config.alpha,
            beta=config.beta,
            **common,
        )
    common = {**common, "plugins": [*common["plugins"], DERMaskedLogitsPlugin()]}
    return DER(
        mem_size=config.mem_size,
        batch_size_mem=config.batch_size_mem,
        alpha=config.alpha,
        beta=config.beta,
        **common,
    )


def _coresets(config: CoresetsConfig, **common):
    from clstm.plugins.coresets import CoresetDistillationPlugin

    options = {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}
    return _with_plugin(CoresetDistillationPlugin(**options), common)


def _separate(config: SeparateConfig, **common):
    from clstm.plugins.separate import SeparateModelsPlugin

    return _with_plugin(SeparateModelsPlugin(), common)


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy: its config class, builder, supported scenarios and description."""

    config: type
    build: Callable[..., Any]
    scenarios: tuple[str, ...]
    description: str
    trains_once: bool = False  # joint: one training call on the whole stream
    stateful: bool = False  # works with train.state: stateful (no extra passes on other batches)
    checkpointable: bool = True  # its state pickles (for --resume); else runs restart
    targets: tuple[str, ...] = TARGETS  # target kinds it handles correctly (clstm.targets)
    # the scenarios it supports with a class per sequence, where fewer than ``scenarios``
    sequence_scenarios: tuple[str, ...] | None = None


#: strategy name -> entry
STRATEGIES: dict[str, StrategyEntry] = {
    "naive": StrategyEntry(NaiveConfig, _naive, ALL, "fine-tuning, the lower bound", stateful=True),
    "joint": StrategyEntry(
        JointConfig, _joint, ALL, "offline training on all experiences at once (upper bound)",
        trains_once=True, stateful=True,
    ),
    "cumulative": StrategyEntry(
        CumulativeConfig, _cumulative, ALL, "retrain on all data seen so far at each experience",
        stateful=True,
    ),
    "replay": StrategyEntry(
        ReplayConfig, _replay, ALL, "experience replay, fixed memory (class-balanced/reservoir)"
    ),
    "ewc": StrategyEntry(EWCConfig, _ewc, ALL, "elastic weight consolidation (and online EWC)"),
    "si": StrategyEntry(SIConfig, _si, ALL, "synaptic intelligence"),
    # MAS's importance is the norm of a (B, C) output (a forecast's too); per-step outputs would
    # mix in padding steps
    "mas": StrategyEntry(
        MASConfig, _mas, ALL, "memory-aware synapses", targets=("sequence", "regression")
    ),
    "lwf": StrategyEntry(LwFConfig, _lwf, ALL, "learning without forgetting (distillation)"),
    "gem": StrategyEntry(GEMConfig, _gem, ALL, "gradient episodic memory (needs quadprog)"),
    # A-GEM's plugin holds a live iterator over its memory, which cannot be pickled.
    "agem": StrategyEntry(
        AGEMConfig, _agem, ALL, "averaged gradient episodic memory", checkpointable=False
    ),
    # GDumb's memory is balanced over the class of each sample
    "gdumb": StrategyEntry(
        GDumbConfig, _gdumb, ALL, "greedy memory, retrain from scratch", targets=("sequence",)
    ),
    # DER stores one output per sample: with classes, the task heads' widths differ
    "der": StrategyEntry(
        DERConfig, _der, ALL, "dark experience replay (DER++)",
        sequence_scenarios=("domain", "class"),
    ),
    "coresets": StrategyEntry(
        CoresetsConfig, _coresets, ALL,
        "replay of a coreset per experience, distilled from the previous model (Ehret et al.)",
    ),
    "separate": StrategyEntry(
        SeparateConfig, _separate, ALL,
        "one fresh model per experience, evaluated with its own (task-aware reference)",
        stateful=True,
    ),
}  # fmt: skip


def strategy_config_class(name: str) -> type:
    """The config dataclass of strategy ``name``; a clear error for an unknown name."""
    if name not in STRATEGIES:
        raise ConfigError(
            f"strategy.name: unknown strategy '{name}'{did_you_mean(name, list(STRATEGIES))}; "
            f"choose one of {', '.join(STRATEGIES)}"
        )
    return STRATEGIES[name].config


def strategies_with_option(key: str) -> list[str]:
    """The strategies whose config has option ``key`` (for a key given to the wrong strategy)."""
    from dataclasses import fields

    return [n for n, e in STRATEGIES.items() if key in {f.name for f in fields(e.config)}]


def check_stateful(strategy: str) -> None:
    """Refuse ``train.state: stateful`` for strategies that run the model on other batches."""
    if not STRATEGIES[strategy].stateful:
        allowed = ", ".join(n for n, e in STRATEGIES.items() if e.stateful)
        raise ConfigError(
            f"train.state: stateful does not work with strategy '{strategy}': its extra forward "
            "passes (memory, importance or teacher batches) would run on the carried state; "
            f"stateful training supports {allowed}"
        )


def check_scenario(strategy: str, scenario: str, target: str = "sequence") -> None:
    """Refuse a strategy in a scenario it does not support, with the supported ones named."""
    entry = STRATEGIES[strategy]
    supported = entry.scenarios
    if target == "sequence" and entry.sequence_scenarios is not None:
        supported = entry.sequence_scenarios
    if scenario not in supported:
        raise ConfigError(
            f"strategy '{strategy}' does not support the {scenario} scenario; "
            f"it supports: {', '.join(supported)}"
        )


def check_target(strategy: str, target: str, config=None) -> None:
    """Refuse a strategy (or one of its options) that cannot handle a benchmark's target kind."""
    supported = STRATEGIES[strategy].targets
    if target not in supported:
        allowed = ", ".join(n for n, e in STRATEGIES.items() if target in e.targets)
        raise ConfigError(
            f"strategy '{strategy}' does not support {target} targets (it needs a class per "
            f"sequence); for {target} targets use one of {allowed}"
        )
    if target != "sequence" and getattr(config, "policy", None) == "class_balanced":
        raise ConfigError(
            f"strategy.policy: class_balanced balances the memory over each sequence's class, "
            f"which {target} targets do not have; set strategy.policy: experience_balanced or "
            "reservoir"
        )


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
    windows_per_series: int | None = None,
    target: str = "sequence",
):
    """The Avalanche strategy for ``config``, with clstm's plugins added before the method's.

    ``plugins`` are appended after clstm's own (e.g. test probes or a user's plugins).
    ``windows_per_series`` is needed with ``train.state: stateful``; ``target`` is the
    benchmark's target kind, which picks the loss (:func:`clstm.targets.criterion`).
    """
    from clstm.plugins import DivergenceGuard, LengthBucketingPlugin, LSTMPlugin
    from clstm.plugins.loading import StackedEvalLoaderPlugin
    from clstm.plugins.stateful import StatefulWindowsPlugin
    from clstm.plugins.stopping import StopPlugin
    from clstm.targets import criterion

    train = config.train
    extra = []
    if train.orthogonal_reg > 0:
        from clstm.plugins.orthogonal import OrthogonalRecurrentPlugin

        extra.append(OrthogonalRecurrentPlugin(train.orthogonal_reg))
    if train.state == "stateful":
        batching = [StatefulWindowsPlugin(windows_per_series)]
    else:
        batching = [LengthBucketingPlugin()] if train.length_bucketing else []
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
        criterion=criterion(target),
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
    if getattr(options, "policy", None) == "auto":  # replay: the memory policy of the targets
        policy = "class_balanced" if target == "sequence" else "experience_balanced"
        options = dataclasses.replace(options, policy=policy)
    return STRATEGIES[config.strategy.name].build(options, **common)
