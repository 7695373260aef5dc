"""The ``tune:`` section of an experiment file: what ``clstm tune`` searches, and how it selects.

::

    tune:
      space:
        train.lr: [0.0003, 0.001, 0.003]               # a list: these values (a grid)
        strategy.ewc_lambda: {loguniform: [1, 10000]}  # a distribution: sampled
      samples: 12              # draws of the distributions (each with every grid combination)
      metric: acc              # a summary of the validation stream; its direction: the catalogue
      selection: split         # or experiences: the first validation_experiences are the search's
      validation_experiences: 3
      seeds: [0]               # seeds of each trial (their mean selects)
      final_seeds: [0, 1, 2, 3, 4]
      scheduler: none          # or asha (engine ray): weak trials stopped after an experience
      seed: 0                  # seed of the draws

Distributions: ``{uniform: [low, high]}``, ``{loguniform: [low, high]}`` (low > 0), ``{randint:
[low, high]}`` (integers, both ends included) and ``{choice: [a, b, ...]}``. As in Ray Tune, the
trials are every grid combination, ``samples`` times over, each time with new draws; draws are
made with numpy from ``seed`` and rounded to 4 significant digits, so a tune's trials are the same
on every machine and engine. A space of lists only is a grid: every combination once.

This module parses and checks the section (one-line :class:`ConfigError` for every fault) and
lists the trials; :mod:`clstm.run.tune` runs them. It imports neither torch nor Avalanche.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from clstm.config import ExperimentConfig, apply_override, build
from clstm.errors import ConfigError
from clstm.metrics import METRICS
from clstm.run.grid import check_grid, deep_copy, parse_seeds, yaml_text

#: the keys of a ``tune:`` section, with what each holds (for the error on an unknown key)
KEYS = ("space", "samples", "metric", "selection", "validation_experiences", "seeds",
        "final_seeds", "scheduler", "seed")  # fmt: skip
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
#: keys the tune sets itself, or that would change what is selected on
NOT_TUNABLE = {
    "seed": "seeds are tune.seeds (each trial) and tune.final_seeds",
    "name": "the experiment name is the tune's folder",
    "eval.test": "the tune sets it: trials never evaluate the test stream",
    "benchmark.experiences": "the tune sets it from tune.selection",
    "benchmark.validation": "the validation split is what trials are scored on; fix it",
}
SIGNIFICANT = 4  # digits kept of a drawn float


@dataclass(frozen=True)
class Distribution:
    """A sampled dimension of the space."""

    kind: str  # uniform, loguniform, randint, choice
    args: tuple

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.args[int(rng.integers(len(self.args)))]
        low, high = self.args
        if self.kind == "randint":
            return int(rng.integers(low, high + 1))
        if self.kind == "uniform":
            value = rng.uniform(low, high)
        else:
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        return float(f"{value:.{SIGNIFICANT}g}")

    @property
    def log(self) -> bool:
        return self.kind == "loguniform"

    def describe(self) -> dict:
        return {self.kind: list(self.args)}


@dataclass(frozen=True)
class TuneSpec:
    """A parsed ``tune:`` section (see the module's docstring)."""

    space: dict[str, list | Distribution]
    metric: str | None = None  # None: the target kind's final summary (ACC, final MSE)
    selection: str = "split"
    validation_experiences: int | None = None
    seeds: tuple[int, ...] = (0,)
    final_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    samples: int | None = None
    scheduler: str = "none"
    seed: int = 0
    raw: dict = field(default_factory=dict, compare=False)  # the section as given

    @property
    def sampled(self) -> bool:
        return any(isinstance(v, Distribution) for v in self.space.values())

    def trials(self) -> list[dict[str, Any]]:
        """Every trial's values, in order: each grid combination, ``samples`` times over (once
        for a grid), the distributions drawn from ``seed``; repeated points are run once."""
        grid_keys = [k for k, v in self.space.items() if not isinstance(v, Distribution)]
        rng = np.random.default_rng(self.seed)
        points, seen = [], set()
        for _ in range(self.samples or 1):
            for combination in product(*(self.space[k] for k in grid_keys)):
                chosen = dict(zip(grid_keys, combination, strict=True))
                point = {
                    k: chosen[k] if k in chosen else v.draw(rng) for k, v in self.space.items()
                }
                text = "|".join(f"{k}={yaml_text(v)}" for k, v in point.items())
                if text not in seen:
                    seen.add(text)
                    points.append(point)
        return points

    def describe(self) -> dict:
        """The section, normalised (what ``tune.json`` keeps to refuse a changed resume)."""
        return {
            "space": {k: v.describe() if isinstance(v, Distribution) else list(v)
                      for k, v in self.space.items()},
            "samples": self.samples, "metric": self.metric, "selection": self.selection,
            "validation_experiences": self.validation_experiences, "seeds": list(self.seeds),
            "final_seeds": list(self.final_seeds), "scheduler": self.scheduler, "seed": self.seed,
        }  # fmt: skip


def _int(section: Mapping, key: str, low: int, default: Any) -> Any:
    value = section.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"tune.{key}: expected an integer >= {low}, got {value!r}")
    return value


def _distribution(key: str, value: Mapping) -> Distribution:
    where = f"tune.space.{key}"
    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise ConfigError(
            f"{where}: expected a list of values or one distribution "
            f"({', '.join(f'{{{d}: [...]}}' for d in DISTRIBUTIONS)}), got {dict(value)!r}"
        )
    kind, args = next(iter(value.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}: choice needs a non-empty list of values")
        check_grid({key: args})
        return Distribution(kind, tuple(args))
    numbers = isinstance(args, list) and len(args) == 2
    numbers = numbers and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in args
    )
    if not numbers:
        raise ConfigError(f"{where}: {kind} needs [low, high], two finite numbers; got {args!r}")
    low, high = args
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise ConfigError(f"{where}: randint needs two integers, got {args!r}")
    if not low < high:
        raise ConfigError(f"{where}: {kind} needs low < high, got [{low}, {high}]")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0 (a log scale), got {low}")
    return Distribution(kind, (low, high))


def parse_tune(section: Any) -> TuneSpec:
    """A :class:`TuneSpec` from a ``tune:`` section; ConfigError naming the faulty key."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"tune: expected a mapping of keys ({', '.join(KEYS)}), got {section!r}")
    unknown = [k for k in section if k not in KEYS]
    if unknown:
        raise ConfigError(f"unknown key 'tune.{unknown[0]}'; allowed keys: {', '.join(KEYS)}")
    space = section.get("space")
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(
            "tune.space: expected at least one `dotted.key: [values]` or `dotted.key: "
            "{loguniform: [low, high]}` entry"
        )
    parsed: dict[str, list | Distribution] = {}
    for key, value in space.items():
        if not isinstance(key, str) or key in NOT_TUNABLE:
            reason = NOT_TUNABLE.get(key, "keys are dotted config paths")
            raise ConfigError(f"tune.space: '{key}' cannot be tuned ({reason})")
        if isinstance(value, Mapping):
            parsed[key] = _distribution(key, value)
        elif isinstance(value, list) and value:
            check_grid({key: value})
            parsed[key] = list(value)
        else:
            raise ConfigError(
                f"tune.space.{key}: expected a non-empty list of values or a distribution, got "
                f"{value!r}"
            )
    selection = section.get("selection", "split")
    if selection not in ("split", "experiences"):
        raise ConfigError(f"tune.selection: {selection!r} is not allowed; choose split or "
                          "experiences")  # fmt: skip
    k = _int(section, "validation_experiences", 1, None)
    if selection == "experiences" and k is None:
        raise ConfigError(
            "tune.selection: experiences needs tune.validation_experiences, the number of "
            "experiences at the start of the stream that the search uses (e.g. 3)"
        )
    if selection == "split" and k is not None:
        raise ConfigError(
            "tune.validation_experiences is for selection: experiences; with selection: split "
            "every experience's validation split is used (remove it)"
        )
    samples = _int(section, "samples", 1, None)
    spec = TuneSpec(
        space=parsed,
        metric=_metric(section.get("metric")),
        selection=selection,
        validation_experiences=k,
        seeds=_seeds(section, "seeds", (0,)),
        final_seeds=_seeds(section, "final_seeds", (0, 1, 2, 3, 4)),
        samples=samples,
        scheduler=section.get("scheduler", "none"),
        seed=_int(section, "seed", 0, 0),
        raw=dict(section),
    )
    if spec.scheduler not in ("none", "asha"):
        raise ConfigError(f"tune.scheduler: {spec.scheduler!r} is not allowed; choose none or asha")
    if samples is not None and not spec.sampled:
        raise ConfigError(
            "tune.samples: the space has no distribution to draw; a grid runs each combination "
            "once (remove samples, or give a key a distribution such as {loguniform: [1, 100]})"
        )
    if spec.sampled and samples is None:
        raise ConfigError("tune.samples: a space with distributions needs samples, the number "
                          "of draws (e.g. 12)")  # fmt: skip
    return spec


def _metric(value: Any) -> str | None:
    if value is None:
        return None
    if value not in METRICS:
        raise ConfigError(f"tune.metric: unknown metric {value!r}; choose from "
                          f"{', '.join(METRICS)}")  # fmt: skip
    return value


def _seeds(section: Mapping, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    if key not in section:
        return default
    try:
        return parse_seeds(section[key])
    except ConfigError as exc:
        raise ConfigError(f"tune.{exc}") from None


def check_against(spec: TuneSpec, raw: Mapping[str, Any]) -> ExperimentConfig:
    """Refuse a space whose keys or values the experiment does not accept; the base config.

    Every grid value, both ends of every numeric distribution and every choice is applied to
    the experiment and validated, so a trial never fails on a bad value after others ran.
    """
    base = build(ExperimentConfig, deep_copy(raw))
    if spec.selection == "split" and not base.benchmark.validation:
        raise ConfigError(
            "tune.selection: split scores trials on the validation split of every experience; "
            "set benchmark.validation (e.g. 0.2), or use selection: experiences"
        )
    if not base.eval.test:
        raise ConfigError("eval.test is set by the tune (false for its trials, true for the final "
                          "runs): remove it from the experiment")  # fmt: skip
    if getattr(base.benchmark, "experiences", None) is not None:
        raise ConfigError(
            "benchmark.experiences is set by the tune (the search and final streams); remove it "
            "and use tune.selection: experiences to hold out the first experiences"
        )
    for key, values in spec.space.items():
        if isinstance(values, Distribution):
            values = list(values.args)
        for value in values:
            trial = deep_copy(raw)
            text = yaml_text(value)
            apply_override(trial, f"{key}={text}")
            try:
                build(ExperimentConfig, trial)
            except ConfigError as exc:
                raise ConfigError(f"tune.space.{key} = {text}: {exc}") from None
    return base
