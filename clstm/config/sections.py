"""The sections every experiment shares (``model``, ``train``, ``eval``) and the experiment itself.

The ``benchmark`` and ``strategy`` sections are chosen by their ``name`` key: each benchmark and
strategy declares its own config dataclass next to its implementation (the registries
:mod:`clstm.data.registry` and :mod:`clstm.strategies.registry`), found here through them. Every
field's default and help text live in its dataclass (:func:`clstm.config.schema.param`).

This module imports neither torch nor Avalanche.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from clstm.config.schema import (
    MAX_NAME,
    MAX_SEED,
    NAME_PATTERN,
    StreamOptions,
    check_experiences,
    param,
)


@dataclass(frozen=True)
class ModelConfig:
    """The recurrent classifier (see :class:`clstm.models.SequenceClassifier`)."""

    type: Literal["lstm", "gru", "rnn"] = param("lstm", "recurrent cell")
    hidden_size: int = param(64, "units per recurrent layer (and direction)", ge=1)
    num_layers: int = param(1, "stacked recurrent layers", ge=1)
    dropout: float = param(
        0.0, "dropout between recurrent layers and before the head", ge=0.0, lt=1.0
    )
    bidirectional: bool = param(False, "read each sequence in both directions")
    adapter: Literal["pad", "projection"] = param(
        "pad",
        "datasets with fewer features than the widest: zero-padded (pad) or mapped by a learned "
        "projection per dataset (projection; task scenario only)",
    )
    adapter_size: int = param(16, "output channels of each projection adapter", ge=1)
    init_hh: Literal["default", "orthogonal"] = param(
        "default",
        "hidden-to-hidden weights: PyTorch's uniform initialisation, or orthogonal per gate "
        "(Ehret et al. 2021's orthogonal_hh_init)",
    )
    packing: Literal["auto", "packed", "padded"] = param(
        "auto",
        "how the RNN skips padding: packed (PackedSequence, fast with cuDNN), padded (run "
        "right-padded, read each sequence at its last real step; ~7x faster on CPU), auto: packed "
        "on CUDA, padded on CPU; bidirectional models always pack",
    )
    elman_output: bool = param(
        False,
        "vanilla RNN (one layer, one direction): each step's hidden state passes through a tanh "
        "layer of its size, not fed back - an Elman layer's output (Ehret et al. 2021's RNN)",
    )

    def __post_init__(self) -> None:
        if self.elman_output and (self.type != "rnn" or self.num_layers != 1 or self.bidirectional):
            raise ValueError(
                "model.elman_output needs model.type: rnn, num_layers: 1 and bidirectional: false"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, applied afresh to every training experience."""

    epochs: int = param(5, "epochs per experience (E in the LR schedules)", ge=1)
    batch_size: int = param(32, "training mini-batch size", ge=1)
    optimizer: Literal["adam", "sgd"] = param("adam", "optimizer")
    lr: float = param(0.003, "initial learning rate lr0, restored at every experience", gt=0.0)
    momentum: float = param(0.0, "SGD momentum (sgd only)", ge=0.0, lt=1.0)
    weight_decay: float = param(0.0, "L2 weight decay", ge=0.0)
    lr_schedule: Literal["exponential", "cosine", "step", "none"] = param(
        "exponential",
        "per-experience decay by epoch e: exponential lr0*exp(-e/E); cosine "
        "lr0*(1+cos(pi*e/E))/2; step lr0*lr_gamma^floor(e/lr_step_size); none lr0",
    )
    lr_step_size: int = param(2, "epochs between decays for lr_schedule=step", ge=1)
    lr_gamma: float = param(0.5, "decay factor for lr_schedule=step", gt=0.0, le=1.0)
    optimizer_state: Literal["reset", "keep"] = param(
        "reset", "optimizer state (e.g. Adam moments) at each new experience"
    )
    grad_clip: float | None = param(
        1.0, "clip the global gradient norm to this value; null disables", gt=0.0
    )
    orthogonal_reg: float = param(
        0.0,
        "lambda of sum_i ||W_i W_i^T - I||^2 over the hidden-to-hidden matrices (per gate) added "
        "to the loss (Ehret et al. 2021's orthogonal_hh_reg); 0 disables",
        ge=0.0,
    )
    length_bucketing: bool = param(
        True, "draw training batches of similar lengths (random order across buckets)"
    )
    state: Literal["reset", "stateful"] = param(
        "reset",
        "reset: every sequence starts from a zero state; stateful: consecutive windows of a "
        "series share a batch row and the state is carried (and detached) from window to window",
    )


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation on every experience's test set (the accuracy matrix)."""

    batch_size: int = param(512, "evaluation mini-batch size", ge=1)
    initial: bool = param(
        True, "evaluate the untrained model first (the initial row; needed for FWT)"
    )
    test: bool = param(
        True,
        "evaluate the test stream; false: the validation stream only (clstm tune's trials, which "
        "never read the test data)",
    )
    every: int = param(
        0,
        "continual evaluation: every this many training iterations (and at the end of each "
        "experience), evaluate every experience seen so far on a fixed subsample; 0: off",
        ge=0,
    )
    subsample: int = param(
        1000, "continual evaluation: sequences per experience (drawn once per run)", ge=1
    )
    background: bool = param(
        False,
        "continual evaluation: evaluate a copy of the model in a second thread while training "
        "goes on (the same values; worth it when the run has a core to spare)",
    )
    window: int | None = param(
        None,
        "continual evaluation: the window of windowed forgetting (WF), in iterations, at least "
        "eval.every; null: 5 x eval.every",
        ge=1,
    )

    @property
    def wf_window(self) -> int:
        """The window of windowed forgetting: ``window``, or 5 evaluations."""
        return self.window if self.window is not None else 5 * max(self.every, 1)

    tolerance: float = param(
        0.02,
        "continual evaluation: a stability gap has recovered when the accuracy (error) is back "
        "within this of its value at the boundary",
        ge=0.0,
    )


@dataclass(frozen=True)
class OnlineConfig:
    """An online, single-pass stream (docs/online.md): each experience arrives in batches, each
    evaluated before it is trained on (prequential)."""

    batch: int = param(
        0,
        "online stream: sequences per incoming batch, each evaluated (prequential) and then "
        "trained on once, in place of train.batch_size; 0: off (offline training)",
        ge=0,
    )
    boundaries: Literal["known", "hidden"] = param(
        "known",
        "known: the strategy is told when the experience changes (its per-experience work runs "
        "there); hidden: it is not (task-free: the optimizer state is never reset)",
    )


def _select_benchmark(name: str) -> type:
    from clstm.data.registry import benchmark_config_class

    return benchmark_config_class(name)


def _select_strategy(name: str) -> type:
    from clstm.strategies.registry import strategy_config_class

    return strategy_config_class(name)


def _benchmarks_with(key: str) -> list[str]:
    from clstm.data.registry import benchmarks_with_option

    return benchmarks_with_option(key)


def _strategies_with(key: str) -> list[str]:
    from clstm.strategies.registry import strategies_with_option

    return strategies_with_option(key)


def _default_benchmark() -> Any:
    return _select_benchmark("synthetic")()


def _default_strategy() -> Any:
    return _select_strategy("naive")()


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: a benchmark (stream of experiences), a model, a strategy and its training."""

    name: str = param(
        "experiment",
        "experiment name, the first folder of its run directories "
        "OUT/NAME/STRATEGY/seedK (default: the YAML file's stem; experiment for a config given "
        "from Python as a dict)",
        pattern=NAME_PATTERN,
    )
    seed: int = param(
        0, "seed for model init, data order and every RNG of the run", ge=0, le=MAX_SEED
    )
    device: str = param(
        "auto",
        "auto (CUDA when available, else CPU), cpu, cuda or cuda:N",
        pattern=r"auto|cpu|cuda(:\d+)?",
    )
    checkpoint: Literal["remove", "keep", "off"] = param(
        "remove",
        "checkpoint after every experience (for --resume); remove or keep it when the run "
        "completes; off: no checkpoints",
    )
    benchmark: Any = param(
        default_factory=_default_benchmark,
        help="the stream of experiences; `name` selects the benchmark",
        select=_select_benchmark,
        owners=_benchmarks_with,
    )
    model: ModelConfig = param(default_factory=ModelConfig, help="recurrent classifier")
    strategy: Any = param(
        default_factory=_default_strategy,
        help="continual-learning strategy; `name` selects it",
        select=_select_strategy,
        owners=_strategies_with,
    )
    train: TrainConfig = param(default_factory=TrainConfig, help="optimisation per experience")
    eval: EvalConfig = param(default_factory=EvalConfig, help="evaluation")
    online: OnlineConfig = param(
        default_factory=OnlineConfig, help="online single-pass stream with prequential evaluation"
    )

    def __post_init__(self) -> None:
        streamed = isinstance(self.benchmark, StreamOptions)  # not a benchmark from Python
        if streamed:
            check_experiences(self.benchmark.experiences)
        if not self.eval.test and streamed and self.benchmark.validation == 0:
            raise ValueError(
                "eval.test: false evaluates the validation stream only, which needs "
                "benchmark.validation > 0 (e.g. 0.2)"
            )
        if self.online.batch and self.train.epochs != 1:
            raise ValueError(
                f"online.batch: an online stream is seen once, but train.epochs is "
                f"{self.train.epochs}; set train.epochs: 1"
            )
        if len(self.name) > MAX_NAME:
            raise ValueError(
                f"name: {self.name[:24]}... is {len(self.name)} characters long; an experiment "
                f"name is a folder name of at most {MAX_NAME}: choose a shorter one"
            )
