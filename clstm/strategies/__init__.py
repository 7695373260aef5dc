"""The strategies: a registry of continual-learning methods on Avalanche's strategies.

- :mod:`~clstm.strategies.registry`: ``strategy.name`` -> config class, builder, the scenarios and
  target kinds each supports, and the checks that refuse the others;
- :mod:`~clstm.strategies.configs`: each strategy's config section;
- :mod:`~clstm.strategies.builders`: each strategy's Avalanche strategy;
- :mod:`~clstm.strategies.compose`: :func:`build_strategy`, the strategy of an experiment with
  clstm's plugins composed in;
- :mod:`~clstm.strategies.lean`: the lean training iteration every built strategy runs;
- :mod:`~clstm.strategies.joint`: joint training, counted as all experiences.

Importing this package imports neither torch nor Avalanche (the builders import them).
"""

from clstm.strategies.compose import build_strategy, make_optimizer
from clstm.strategies.registry import (
    STRATEGIES,
    StrategyEntry,
    check_scenario,
    check_stateful,
    check_target,
    strategies_with_option,
    strategy_config_class,
)

__all__ = [
    "STRATEGIES", "StrategyEntry", "build_strategy", "check_scenario", "check_stateful",
    "check_target", "make_optimizer", "strategies_with_option", "strategy_config_class",
]  # fmt: skip
