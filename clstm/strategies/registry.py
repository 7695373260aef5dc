"""Registry of continual-learning strategies: ``strategy.name`` -> config, builder, scenarios.

Each strategy is an Avalanche strategy (or ``Naive`` plus an Avalanche plugin) with clstm's
:class:`~clstm.plugins.LSTMPlugin`, :class:`~clstm.plugins.DivergenceGuard` and, optionally,
:class:`~clstm.plugins.LengthBucketingPlugin` composed in (:mod:`clstm.strategies.compose`).
Adding a strategy = its config dataclass (:mod:`~clstm.strategies.configs`) and builder
(:mod:`~clstm.strategies.builders`) plus one entry in :data:`STRATEGIES`. Nothing here imports
torch or Avalanche. ``docs/strategies.md`` says where each default comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import clstm.strategies.builders as builders
from clstm.config.schema import did_you_mean
from clstm.errors import ConfigError
from clstm.strategies.configs import (
    AGEMConfig,
    ASERConfig,
    CLOPSConfig,
    CoresetsConfig,
    CumulativeConfig,
    DERConfig,
    DERPPConfig,
    DT2WConfig,
    EWCConfig,
    FastICARLConfig,
    GDumbConfig,
    GEMConfig,
    HerdingConfig,
    HNETConfig,
    JointConfig,
    LwFConfig,
    MASConfig,
    NaiveConfig,
    ReplayConfig,
    SeparateConfig,
    SIConfig,
)

ALL = ("domain", "task", "class")
#: what a strategy may need of a benchmark's target kind (:class:`clstm.targets.TargetKind`)
NEEDS = {
    "a class per sequence": lambda kind: kind.classes,
    "one output per sequence": lambda kind: not kind.per_step,
}


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
    needs: str | None = None  # what it needs of the target kind (a key of NEEDS); None: any
    # the scenarios it supports with a class per sequence, where fewer than ``scenarios``
    sequence_scenarios: tuple[str, ...] | None = None
    #: online streams (``online.batch``): "any" boundaries, "known" boundaries only (its work
    #: is done at experience boundaries), or None (not run online)
    online: str | None = None

    def handles(self, kind) -> bool:
        """Whether it handles the target kind ``kind`` (:class:`clstm.targets.TargetKind`)."""
        return self.needs is None or NEEDS[self.needs](kind)

    @property
    def targets(self) -> list[str]:
        """The names of the registered target kinds it handles."""
        from clstm.targets import KINDS

        return [name for name, kind in KINDS.items() if self.handles(kind)]


#: strategy name -> entry
STRATEGIES: dict[str, StrategyEntry] = {
    "naive": StrategyEntry(
        NaiveConfig, builders.naive, ALL, "fine-tuning, the lower bound", stateful=True,
        online="any",
    ),
    "joint": StrategyEntry(
        JointConfig, builders.joint, ALL,
        "offline training on all experiences at once (upper bound)",
        trains_once=True, stateful=True,
    ),
    "cumulative": StrategyEntry(
        CumulativeConfig, builders.cumulative, ALL,
        "retrain on all data seen so far at each experience", stateful=True,
    ),
    "replay": StrategyEntry(
        ReplayConfig, builders.replay, ALL,
        "experience replay, fixed memory (class-balanced/reservoir)", online="any",
    ),
    "ewc": StrategyEntry(
        EWCConfig, builders.ewc, ALL, "elastic weight consolidation (and online EWC)",
        online="known",
    ),
    "si": StrategyEntry(SIConfig, builders.si, ALL, "synaptic intelligence"),
    # MAS's importance is the norm of a (B, C) output (a forecast's too); per-step outputs would
    # mix in padding steps
    "mas": StrategyEntry(
        MASConfig, builders.mas, ALL, "memory-aware synapses", needs="one output per sequence"
    ),
    "lwf": StrategyEntry(
        LwFConfig, builders.lwf, ALL, "learning without forgetting (distillation)",
        online="known",
    ),
    "gem": StrategyEntry(
        GEMConfig, builders.gem, ALL, "gradient episodic memory (needs quadprog)"
    ),
    # A-GEM's plugin holds a live iterator over its memory, which cannot be pickled.
    "agem": StrategyEntry(
        AGEMConfig, builders.agem, ALL, "averaged gradient episodic memory", checkpointable=False,
        online="known",
    ),
    # GDumb's memory is balanced over the class of each sample
    "gdumb": StrategyEntry(
        GDumbConfig, builders.gdumb, ALL, "greedy memory, retrain from scratch",
        needs="a class per sequence",
    ),
    # DER stores one output per sample: with classes, the task heads' widths differ
    "der": StrategyEntry(
        DERConfig, builders.der, ALL, "dark experience replay (DER++)",
        sequence_scenarios=("domain", "class"), online="known",
    ),
    "derpp": StrategyEntry(
        DERPPConfig, builders.der, ALL, "DER++ with TSCIL's weights (alpha = beta = 0.5)",
        sequence_scenarios=("domain", "class"), online="known",
    ),
    # exemplars per class, chosen from the features of the class's sequences
    "herding": StrategyEntry(
        HerdingConfig, builders.herding, ALL, "replay of iCaRL-herding exemplars (TSCIL)",
        needs="a class per sequence",
    ),
    # one head, whose classes get a mean each (task heads would need a classifier per task)
    "fasticarl": StrategyEntry(
        FastICARLConfig, builders.fasticarl, ALL, sequence_scenarios=("domain", "class"),
        description="exemplars nearest the class mean, one-hot BCE, NCM classifier (TSCIL)",
        needs="a class per sequence",
    ),
    # values in the encoder's feature space, without task projections or heads
    "aser": StrategyEntry(
        ASERConfig, builders.aser, ALL, sequence_scenarios=("domain", "class"),
        description="replay retrieved and replaced by KNN Shapley values (TSCIL)",
        needs="a class per sequence",
    ),
    # its loss weighs each sequence's cross-entropy
    "clops": StrategyEntry(
        CLOPSConfig, builders.clops, ALL,
        "importance-weighted training, replay of the most important sequences (TSCIL)",
        needs="a class per sequence",
    ),
    # prototypes and their augmentation are per class; the previous model's hidden states are
    # read from one forward, which task heads would split by task
    "dt2w": StrategyEntry(
        DT2WConfig, builders.dt2w, ALL, sequence_scenarios=("domain", "class"),
        description="LwF + soft-DTW distillation of hidden states + prototype augmentation",
        needs="a class per sequence",
    ),
    # a task embedding per task; the heads are generated too, so they must not grow (classes
    # per sequence in the task scenario have growing heads)
    "hnet": StrategyEntry(
        HNETConfig, builders.hnet, ("task",), sequence_scenarios=(),
        description="hypernetwork generating the RNN's weights per task (Ehret et al.)",
    ),
    "coresets": StrategyEntry(
        CoresetsConfig, builders.coresets, ALL,
        "replay of a coreset per experience, distilled from the previous model (Ehret et al.)",
    ),
    "separate": StrategyEntry(
        SeparateConfig, builders.separate, ALL,
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


def check_online(strategy: str, boundaries: str) -> None:
    """Refuse a strategy that is not run online, or (``boundaries: hidden``) one whose work is
    done at the experience boundaries the stream hides."""
    entry = STRATEGIES[strategy]
    if entry.online is None:
        allowed = ", ".join(n for n, e in STRATEGIES.items() if e.online)
        raise ConfigError(
            f"online.batch: strategy '{strategy}' is not run online (it needs whole experiences, "
            f"or several passes over them); online streams support {allowed}"
        )
    if boundaries == "hidden" and entry.online != "any":
        allowed = ", ".join(n for n, e in STRATEGIES.items() if e.online == "any")
        raise ConfigError(
            f"online.boundaries: hidden does not tell strategy '{strategy}' where an experience "
            f"ends, which is where it does its work; with hidden boundaries use {allowed}, or "
            "set online.boundaries: known"
        )


def check_stateful(strategy: str) -> None:
    """Refuse ``train.state: stateful`` for strategies that run the model on other batches."""
    if not STRATEGIES[strategy].stateful:
        allowed = ", ".join(n for n, e in STRATEGIES.items() if e.stateful)
        raise ConfigError(
            f"train.state: stateful does not work with strategy '{strategy}': its extra forward "
            "passes (memory, importance or teacher batches) would run on the carried state; "
            f"stateful training supports {allowed}"
        )


def _kind(target):
    from clstm.targets import kind_named

    return kind_named(target) if isinstance(target, str) else target


def check_scenario(strategy: str, scenario: str, target="sequence") -> None:
    """Refuse a strategy in a scenario it does not support, with the supported ones named;
    ``target`` is the benchmark's target kind (or its name)."""
    entry = STRATEGIES[strategy]
    supported = entry.scenarios
    if _kind(target).classes and entry.sequence_scenarios is not None:
        supported = entry.sequence_scenarios
    if scenario not in supported:
        raise ConfigError(
            f"strategy '{strategy}' does not support the {scenario} scenario; "
            f"it supports: {', '.join(supported)}"
        )


def check_target(strategy: str, target, config=None) -> None:
    """Refuse a strategy (or one of its options) that cannot handle a benchmark's target kind
    (a :class:`clstm.targets.TargetKind` or its name)."""
    kind = _kind(target)
    entry = STRATEGIES[strategy]
    if not entry.handles(kind):
        allowed = ", ".join(n for n, e in STRATEGIES.items() if e.handles(kind))
        raise ConfigError(
            f"strategy '{strategy}' does not support {kind.name} targets (it needs "
            f"{entry.needs}); for {kind.name} targets use one of {allowed}"
        )
    if not kind.classes and getattr(config, "policy", None) == "class_balanced":
        raise ConfigError(
            f"strategy.policy: class_balanced balances the memory over each sequence's class, "
            f"which {kind.name} targets do not have; set strategy.policy: experience_balanced or "
            "reservoir"
        )
