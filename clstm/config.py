"""Typed, frozen experiment configuration.

An experiment is a YAML file with the sections ``benchmark``, ``model``, ``strategy``, ``train`` and
``eval`` plus a few top-level keys. :func:`load_config` reads it, applies ``--set dotted.key=value``
overrides and validates every value strictly: an unknown key, a wrong type or an out-of-range value
raises :class:`ConfigError` with a one-line message naming the key and what is allowed.

The ``benchmark`` and ``strategy`` sections are chosen by their ``name`` key: each benchmark and
strategy declares its own config dataclass next to its implementation (see the registries in
:mod:`clstm.data.registry` and :mod:`clstm.strategies`). Every field's default and help text live in
its dataclass; :func:`reference_markdown` renders them for the README (a test keeps the two equal).

This module imports neither torch nor Avalanche.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from clstm.errors import ConfigError
from clstm.schema import (  # noqa: F401 - re-exported: config sections are declared with these
    MAX_SEED,
    StreamOptions,
    check_fits_in_memory,
    param,
    physical_memory,
)
from clstm.yamlio import load_yaml, read_yaml

__all__ = ["ConfigError", "ExperimentConfig", "load_config"]  # ConfigError lives in clstm.errors


# --------------------------------------------------------------------------------------------------
# Sections shared by every experiment. Benchmark and strategy sections live beside their code.
# --------------------------------------------------------------------------------------------------


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


def _select_benchmark(name: str) -> type:
    from clstm.data.registry import benchmark_config_class

    return benchmark_config_class(name)


def _select_strategy(name: str) -> type:
    from clstm.strategies import strategy_config_class

    return strategy_config_class(name)


def _benchmarks_with(key: str) -> list[str]:
    from clstm.data.registry import benchmarks_with_option

    return benchmarks_with_option(key)


def _strategies_with(key: str) -> list[str]:
    from clstm.strategies import strategies_with_option

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
        "OUT/NAME/STRATEGY/seedK (defaults to the YAML file's stem)",
        pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*",
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


# --------------------------------------------------------------------------------------------------
# Loading, overriding, validating
# --------------------------------------------------------------------------------------------------


def load_config(
    source: str | Path | Mapping[str, Any] | ExperimentConfig,
    overrides: Iterable[str] = (),
) -> ExperimentConfig:
    """Build a validated :class:`ExperimentConfig` from a YAML path, a mapping or a config.

    ``overrides`` are ``"dotted.key=value"`` strings; values are parsed as YAML scalars/lists
    (``0.01``, ``true``, ``null``, ``[10, 30]``). Raises :class:`ConfigError` on any problem.
    """
    if isinstance(source, ExperimentConfig):
        raw: dict[str, Any] = to_dict(source)
    elif isinstance(source, Mapping):
        raw = _deep_copy_mapping(source)
    elif isinstance(source, (str, Path)):
        raw = read_yaml(Path(source))
        raw.setdefault("name", Path(source).stem)
    else:
        raise ConfigError(
            "config must be a YAML path, a dict or an ExperimentConfig, "
            f"not {type(source).__name__}"
        )
    if "sweep" in raw:
        raise ConfigError(
            "this config has a sweep section: run it with `clstm run` or clstm.run_sweep "
            "(which expand it), or remove the section to run one configuration"
        )
    for item in overrides:
        apply_override(raw, item)
    return build(ExperimentConfig, raw)


def _deep_copy_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    def copy(value: Any) -> Any:
        if isinstance(value, Mapping):
            return _deep_copy_mapping(value)
        return list(value) if isinstance(value, list) else value

    return {k: copy(v) for k, v in data.items()}


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to a raw (unvalidated) config mapping in place."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key):
        raise ConfigError(
            f"an override must be dotted.key=value (e.g. train.lr=0.01), got '{item}'",
            cli=f"--set expects dotted.key=value (e.g. train.lr=0.01), got '{item}'",
        )
    try:
        value = load_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise ConfigError(
                f"override {key}: '{prefix}' is a value, not a section",
                cli=f"--set {key}: '{prefix}' is a value, not a section",
            )
        node = child
    node[parts[-1]] = value


def build(cls: type, data: Any, prefix: str = "", owners: Callable | None = None) -> Any:
    """Validate ``data`` (a mapping) against the dataclass ``cls`` and construct it.

    ``owners(key)`` names the other strategies/benchmarks that have an unknown ``key``, for a
    key given to the wrong one (``strategy.mem_size`` with ``naive``).
    """
    section = prefix.rstrip(".") or "the config"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section}: expected a mapping of keys, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = [k for k in data if k not in known]
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        elsewhere = owners(key) if owners is not None else []
        if elsewhere and not close:
            chosen = data.get("name") or (_field_default(known["name"]) if "name" in known else "?")
            raise ConfigError(
                f"{prefix}{key} is not an option of {section.rstrip('.')} '{chosen}'; it belongs "
                f"to {', '.join(elsewhere)} (set {section}.name) - options of '{chosen}': "
                f"{', '.join(k for k in known if k != 'name') or 'none'}"
            )
        raise ConfigError(
            f"unknown key '{prefix}{key}'{hint}; allowed keys in {section}: {', '.join(known)}"
        )
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        key = prefix + name
        select = f.metadata.get("select")
        if select is not None:
            sub = data.get(name) or {}
            if not isinstance(sub, Mapping):
                raise ConfigError(f"{key}: expected a mapping of keys, got {_describe(sub)}")
            default_name = _field_default(f).name
            chosen = sub.get("name", default_name)
            if not isinstance(chosen, str):
                raise ConfigError(f"{key}.name: expected a string, got {_describe(chosen)}")
            kwargs[name] = build(select(chosen), sub, key + ".", f.metadata.get("owners"))
        elif dataclasses.is_dataclass(hints[name]):
            kwargs[name] = build(hints[name], data.get(name), key + ".")
        elif name in data:
            kwargs[name] = _check(data[name], hints[name], key, f.metadata)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a __post_init__ cross-field check
        message = str(exc)  # named after its key already ("model.x needs ..."): no prefix
        if not message.startswith(f"{section}."):
            message = f"{section}: {message}"
        raise ConfigError(message) from None


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check(value: Any, hint: Any, key: str, meta: Mapping[str, Any]) -> Any:
    value = _coerce(value, hint, key)
    _check_bounds(value, key, meta)
    pattern = meta.get("pattern")
    if pattern and isinstance(value, str) and not re.fullmatch(pattern, value):
        raise ConfigError(f"{key}: {value!r} does not match the allowed form {pattern}")
    return value


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(f"{key}: null is not allowed; expected {type_name(hint)}")
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {type_name(hint)}, got {_describe(value)}")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(
                f"{key}: {value!r} is not allowed; choose one of {', '.join(map(str, allowed))}"
            )
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: a non-empty list of X
            if not isinstance(value, (list, tuple)) or not value:
                raise ConfigError(f"{key}: expected a non-empty list, got {_describe(value)}")
            return tuple(_coerce(v, args[0], key) for v in value)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected {type_name(hint)}, got {_describe(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in a config class


_BOUNDS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "ge": (lambda v, b: v >= b, ">="),
    "gt": (lambda v, b: v > b, ">"),
    "le": (lambda v, b: v <= b, "<="),
    "lt": (lambda v, b: v < b, "<"),
}


def _check_bounds(value: Any, key: str, meta: Mapping[str, Any]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        for name, (ok, symbol) in _BOUNDS.items():
            bound = meta.get(name)
            if bound is not None and not ok(v, bound):
                raise ConfigError(f"{key}: {v} is out of range; it must be {symbol} {bound}")


def type_name(hint: Any) -> str:
    """A short human name for a config field's type."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        names = [type_name(a) for a in args if a is not type(None)]
        text = " or ".join(names)
        return f"{text} or null" if type(None) in args else text
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_name(args[0])}"
        return "[" + ", ".join(type_name(a) for a in args) + "]"
    return {bool: "bool", int: "int", float: "float", str: "string"}.get(hint, str(hint))


# --------------------------------------------------------------------------------------------------
# Serialisation and documentation
# --------------------------------------------------------------------------------------------------


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-ready dict of a config (tuples become lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    return plain(config)


def to_yaml(config: Any) -> str:
    """The fully resolved config as YAML, loadable again by :func:`load_config`."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)


def config_hash(config: Any) -> str:
    """A short SHA-256 of the resolved config (canonical JSON), for provenance."""
    text = json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reference_rows(cls: type, prefix: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in fields(cls):
        hint = hints[f.name]
        if f.metadata.get("select") is not None or dataclasses.is_dataclass(hint):
            continue
        default = _field_default(f)
        shown = json.dumps(list(default) if isinstance(default, tuple) else default)
        bounds = [
            f"{sym} {f.metadata[n]}"
            for n, (_, sym) in _BOUNDS.items()
            if f.metadata.get(n) is not None
        ]
        kind = type_name(hint) + (f" ({', '.join(bounds)})" if bounds else "")
        rows.append(f"| `{prefix}{f.name}` | {kind} | `{shown}` | {f.metadata.get('help', '')} |")
    return rows


def reference_markdown() -> str:
    """The README's config reference, rendered from the config dataclasses' defaults and help."""
    from clstm.data.registry import BENCHMARKS
    from clstm.strategies import STRATEGIES

    header = ["| key | type | default | meaning |", "|---|---|---|---|"]
    out = ["#### Top level and shared sections", "", *header]
    out += _reference_rows(ExperimentConfig, "")
    for section, cls in (("model", ModelConfig), ("train", TrainConfig), ("eval", EvalConfig)):
        out += _reference_rows(cls, section + ".")
    sections = (
        ("Benchmark", BENCHMARKS, _select_benchmark),
        ("Strategy", STRATEGIES, _select_strategy),
    )
    for title, registry, select in sections:
        key = title.lower()
        for name in registry:
            rows = _reference_rows(select(name), key + ".")
            out += ["", f"#### {title} `{key}.name: {name}`", ""]
            out += [*header, *rows] if rows else ["No options."]
    return "\n".join(out) + "\n"


def update_readme(path: str | Path) -> None:
    """Replace the config reference between the README's markers with the current one."""
    path = Path(path)
    text = path.read_text()
    start, end = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{reference_markdown()}{end}{tail}")


if __name__ == "__main__":
    # python -m clstm.config                    prints the README's config reference
    # python -m clstm.config --update README.md  rewrites it in place
    import sys

    if sys.argv[1:2] == ["--update"] and len(sys.argv) == 3:
        update_readme(sys.argv[2])
    else:
        print(reference_markdown(), end="")
