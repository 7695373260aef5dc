"""Expanding a sweep: seeds and a grid of config values into runs (:class:`RunSpec`), each
validated as a config before anything runs; the ``sweep:`` section of an experiment file.
Used by :mod:`clstm.run.sweep`, which runs them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from clstm.config import MAX_SEED, ExperimentConfig, apply_override, build, to_dict
from clstm.config.loading import name_from_file
from clstm.config.yamlio import load_yaml, read_yaml
from clstm.errors import ConfigError
from clstm.run.rundir import identity_hash, run_name_for

#: a sweep with more runs than this needs ``allow_large=True`` (``--allow-large-sweep``)
MAX_RUNS = 10_000
#: grid keys that would file runs under the wrong name: seeds are swept with ``seeds``
RESERVED_GRID_KEYS = {
    "seed": "sweep seeds with --seeds 1,2 (sweep.seeds in a YAML file; seeds= in Python)",
    "name": "the experiment name is one folder per sweep; run one sweep per experiment name",
}


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its name, seed and the overrides that make it."""

    run_name: str
    seed: int
    overrides: tuple[str, ...]
    identity: str = ""
    #: the resolved config of this combination (its seed is ``seed``), as validated by expand
    config: dict = field(default_factory=dict, compare=False, repr=False)
    #: what chose this run (a tune's selection), recorded in its ``meta.json`` as ``tune``
    chosen_by: dict | None = field(default=None, compare=False, repr=False)


def parse_seeds(text: str | int | Sequence[int]) -> tuple[int, ...]:
    """``"0-4"`` -> (0, 1, 2, 3, 4); ``"0,3,7"``, ``3`` or ``[0, 3]`` as given."""
    if isinstance(text, int) and not isinstance(text, bool):
        values = [text]
    elif isinstance(text, (list, tuple)):
        values = list(text)
    else:
        values = []
        for part in str(text).split(","):
            part = part.strip()
            match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if match:
                lo, hi = int(match[1]), int(match[2])
                if lo > hi:
                    raise ConfigError(f"seeds: range '{part}' goes backwards")
                if hi - lo + 1 > MAX_RUNS:
                    raise ConfigError(
                        f"seeds: range '{part}' has {hi - lo + 1:,} seeds; a sweep may have at "
                        f"most {MAX_RUNS:,} runs unless allow_large=True (--allow-large-sweep)"
                    )
                values += range(lo, hi + 1)
            elif part.isdigit():
                values.append(int(part))
            else:
                raise ConfigError(f"seeds: '{part}' is not a seed or a range like 0-4")
    if not values or any(
        not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_SEED for v in values
    ):
        raise ConfigError(f"seeds: expected integers from 0 to {MAX_SEED}, got {text!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"seeds: a seed is listed twice in {text!r}")
    return tuple(values)


def _split_values(text: str) -> list[str]:
    """Split ``a,b,[1, 2]`` on top-level commas (not inside brackets)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["train.lr=0.01,0.001"]`` -> ``{"train.lr": [0.01, 0.001]}`` (values read as YAML)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(
                f"--grid expects key=value1,value2 (e.g. train.lr=0.01,0.001), got '{item}'"
            )
        if key in grid:
            raise ConfigError(f"--grid: '{key}' is given twice")
        try:
            grid[key] = [load_yaml(v) for v in _split_values(text)]
        except yaml.YAMLError as exc:
            raise ConfigError(f"--grid {key}: {getattr(exc, 'problem', None) or exc}") from None
    check_grid(grid)
    return grid


def check_grid(grid: Mapping[str, Sequence[Any]]) -> None:
    """Refuse reserved keys (``seed``, ``name``), empty value lists and repeated values."""
    for key, values in grid.items():
        if key in RESERVED_GRID_KEYS:
            raise ConfigError(f"grid key '{key}' is not allowed: {RESERVED_GRID_KEYS[key]}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"grid key '{key}': expected a non-empty list of values")
        texts = [yaml_text(v) for v in values]
        repeated = sorted({t for t in texts if texts.count(t) > 1})
        if repeated:
            raise ConfigError(
                f"grid key '{key}': value {repeated[0]} is listed twice; each combination runs "
                "once (for repeats, sweep seeds)"
            )


def yaml_text(value: Any) -> str:
    """A value as override text (``key=<text>``), read back as the same value."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(yaml_text(v) for v in value) + "]"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def expand(
    raw: Mapping[str, Any],
    seeds: Sequence[int],
    grid: Mapping[str, list[Any]],
    overrides: Sequence[str] = (),
) -> list[RunSpec]:
    """Every grid combination x seed, validated; raises :class:`ConfigError` on a bad value.

    ``overrides`` (``--set``) change the base config and, like grid values, name the runs:
    ``<strategy>_<set key=value>..._<grid key=value>...`` as one safe folder name.
    """
    check_grid(grid)
    keys = list(grid)
    fixed = [(k.strip(), v) for k, _, v in (o.partition("=") for o in overrides)]
    both = sorted({k for k, _ in fixed} & set(keys))
    if both:
        raise ConfigError(
            f"{both[0]} is both set (--set) and swept (--grid or sweep.grid); give it in one of "
            "them"
        )
    specs = []
    for values in product(*(grid[k] for k in keys)) if keys else [()]:
        swept = tuple(f"{k}={yaml_text(v)}" for k, v in zip(keys, values, strict=True))
        trial = deep_copy(raw)
        for item in (*overrides, *swept):
            apply_override(trial, item)
        cfg = build(ExperimentConfig, trial)  # a bad grid value fails here, before any run
        changes = [(k, _parsed(v)) for k, v in fixed]
        changes += [(k, v) for k, v in zip(keys, values, strict=True) if k not in dict(fixed)]
        name = run_name_for(cfg.strategy.name, changes)
        resolved = to_dict(cfg)
        ident = identity_hash(resolved)
        specs += [
            RunSpec(name, seed, (*overrides, *swept), ident, {**resolved, "seed": seed})
            for seed in seeds
        ]
    return _unique_names(specs)


def _parsed(text: str) -> Any:
    try:
        return load_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _unique_names(specs: list[RunSpec]) -> list[RunSpec]:
    """Different configs whose safe names coincide (``a/b`` vs ``a_b``) get a hash suffix."""
    by_name: dict[str, set[str]] = {}
    for spec in specs:
        by_name.setdefault(spec.run_name, set()).add(spec.identity)
    return [
        RunSpec(f"{s.run_name}~{s.identity[:8]}", s.seed, s.overrides, s.identity, s.config)
        if len(by_name[s.run_name]) > 1
        else s
        for s in specs
    ]


def deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return load_yaml(yaml.safe_dump(dict(raw)))


def read_sweep_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config without its sweep section, sweep section or {})`` from an experiment YAML."""
    raw = read_yaml(Path(path))
    name_from_file(raw, Path(path))
    sweep = raw.pop("sweep", None) or {}
    if "tune" in raw:
        raise ConfigError(
            f"{path} has a tune: section: run it with `clstm tune {path}` (clstm run runs "
            "experiment files without one)"
        )
    if not isinstance(sweep, Mapping) or set(sweep) - {"seeds", "grid"}:
        raise ConfigError("sweep: expected a mapping with `seeds` and/or `grid`")
    grid = sweep.get("grid") or {}
    if not isinstance(grid, Mapping) or any(
        not isinstance(v, list) or not v for v in grid.values()
    ):
        raise ConfigError("sweep.grid: expected `dotted.key: [value, ...]` entries")
    check_grid(grid)
    return raw, dict(sweep)


#: the worker's state, set by :func:`_init_worker` (a sweep's worker process runs one run at once)
