"""The checks of an experiment against its benchmark, before anything is written: every refusal
that needs both the config and the built stream (scenario, target kind, sizes), in one line each.
"""

from __future__ import annotations

import os

from clstm.config import ExperimentConfig
from clstm.errors import ConfigError


def check_experiment(cfg: ExperimentConfig, bench, device=None) -> None:
    """Refuse (ConfigError, one line) an experiment its benchmark cannot run: a model too large
    for the device's memory, a strategy the scenario or target kind does not support, and the
    combinations of options that do not go together."""
    from clstm.models import parameter_count
    from clstm.strategies import check_scenario, check_stateful, check_target

    params = parameter_count(cfg.model, bench)
    need = params * 4 * 4  # float32 weights, gradients and two Adam moments
    available = _memory_bytes(device)
    if available and need > available:
        where = "GPU memory" if getattr(device, "type", "cpu") == "cuda" else "memory"
        raise ConfigError(
            f"model.hidden_size {cfg.model.hidden_size} x num_layers {cfg.model.num_layers} on "
            f"{bench.n_features} features gives {params:,} parameters ({need / 2**30:,.1f} GiB "
            f"with gradients and optimizer state), more than the {available / 2**30:,.1f} GiB of "
            f"{where} here; use a smaller model.hidden_size or model.num_layers"
        )

    kind = bench.kind
    check_scenario(cfg.strategy.name, bench.scenario_name, kind)
    check_target(cfg.strategy.name, kind, cfg.strategy)
    if not kind.classes and bench.scenario_name == "class":
        raise ConfigError(
            f"{kind.name} targets have no growing class head: use benchmark.scenario domain "
            "(one shared head) or task (one head per task)"
        )
    if cfg.train.state == "stateful":
        check_stateful(cfg.strategy.name)
        if bench.windows_per_series is None:
            raise ConfigError(
                "train.state: stateful needs a benchmark of consecutive windows of long series "
                "(e.g. benchmark.name: cued_recall)"
            )
        if cfg.model.bidirectional:
            raise ConfigError("train.state: stateful cannot be combined with model.bidirectional")
    if cfg.model.adapter == "projection" and bench.scenario_name != "task":
        raise ConfigError(
            "model.adapter: projection needs task labels to pick each dataset's projection; "
            "use benchmark.scenario: task, or model.adapter: pad"
        )
    if cfg.online.batch:
        _check_online(cfg, bench)
    if cfg.eval.every and cfg.strategy.name == "separate":
        raise ConfigError(
            "eval.every: separate evaluates each experience with the model trained on it, so "
            "there is no one model to follow across experiences; set eval.every: 0"
        )
    if cfg.eval.every and cfg.train.state == "stateful":
        raise ConfigError(
            "eval.every: continual evaluation would interrupt the state carried from window to "
            "window (train.state: stateful); set eval.every: 0"
        )
    if cfg.eval.every and cfg.eval.window is not None and cfg.eval.window < cfg.eval.every:
        raise ConfigError(
            f"eval.window: {cfg.eval.window} iterations is shorter than eval.every "
            f"({cfg.eval.every}): no two evaluations fall in one window; make it at least that"
        )


def _check_online(cfg: ExperimentConfig, bench) -> None:
    """The rules of online streams (docs/online.md), each broken one refused in one line."""
    from clstm.strategies.registry import check_online

    check_online(cfg.strategy.name, cfg.online.boundaries)
    if cfg.train.state == "stateful":
        raise ConfigError(
            "online.batch: train.state: stateful carries the state from window to window of a "
            "series, which batches in order of arrival do not keep together; set train.state: reset"
        )
    policy = getattr(cfg.strategy, "policy", None)
    if cfg.strategy.name == "replay" and policy not in ("auto", "reservoir"):
        raise ConfigError(
            f"strategy.policy: {policy} is not an online policy: online replay keeps a reservoir "
            "sample of the stream, updated with every incoming batch; set strategy.policy: "
            "reservoir (or auto)"
        )
    if cfg.online.boundaries == "hidden" and bench.scenario_name in ("task", "class"):
        why = (
            "its task labels tell the learner which experience every sequence comes from"
            if bench.scenario_name == "task"
            else "its head grows when an experience brings new classes, which tells the learner "
            "an experience has begun"
        )
        raise ConfigError(
            f"online.boundaries: hidden cannot hide the boundaries of the {bench.scenario_name} "
            f"scenario: {why}; use benchmark.scenario: domain, or online.boundaries: known"
        )
    if not bench.kind.accuracy and bench.arrival_times is None:  # forecasts: errors measured
        raise ConfigError(
            f"online.batch: this benchmark's {bench.kind.name} targets come without the times "
            "of their windows, so an online stream could train on targets not yet observed; "
            "online forecasting needs a benchmark with window times (forecast_regimes, "
            "forecast_aeon)"
        )


def _memory_bytes(device) -> int | None:
    """Total memory of the device the run uses (physical RAM on CPU), or None if unknown."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
