"""Loading an experiment config: YAML, ``--set`` overrides, strict validation, serialisation.

:func:`load_config` reads a YAML file, a mapping or a config, applies ``--set dotted.key=value``
overrides and validates every value strictly: an unknown key, a wrong type or an out-of-range value
raises :class:`ConfigError` with a one-line message naming the key and what is allowed.

This module imports neither torch nor Avalanche.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from clstm.config.schema import BOUNDS, MAX_NAME, NAME_PATTERN, field_default, type_name
from clstm.config.sections import ExperimentConfig
from clstm.config.yamlio import load_yaml, read_yaml
from clstm.errors import ConfigError


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
        name_from_file(raw, Path(source))
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
    if "tune" in raw:
        raise ConfigError(
            "this config has a tune section: run it with `clstm tune` or clstm.tune (which "
            "search, then run the chosen setting), or remove the section to run one configuration"
        )
    for item in overrides:
        apply_override(raw, item)
    return build(ExperimentConfig, raw)


def name_from_file(raw: dict, path: Path) -> None:
    """The experiment's name from the file name when the file sets none; a one-line error
    saying so when that file name cannot be one (``my exp.yaml``)."""
    if "name" in raw:
        return
    stem = path.stem
    if not re.fullmatch(NAME_PATTERN, stem) or len(stem) > MAX_NAME:
        raise ConfigError(
            f"{path} sets no name:, and its file name {stem!r} cannot be the experiment's name "
            f"(a folder name: letters, digits and . _ -, at most {MAX_NAME}); add name: to the "
            "file or rename it"
        )
    raw["name"] = stem


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
            chosen = data.get("name") or (field_default(known["name"]) if "name" in known else "?")
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
            default_name = field_default(f).name
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
        top_level = not prefix and message.partition(":")[0] in known  # "name: ..."
        if not message.startswith(f"{section}.") and not top_level:
            message = f"{section}: {message}"
        raise ConfigError(message) from None


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
        number = None
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {_describe(value)}")
        if not math.isfinite(number):  # every float option: inf and nan are never meant
            raise ConfigError(f"{key}: {value!r} is not a finite number; give a finite value")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in a config class


def _check_bounds(value: Any, key: str, meta: Mapping[str, Any]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        for name, (ok, symbol) in BOUNDS.items():
            bound = meta.get(name)
            if bound is not None and not ok(v, bound):
                raise ConfigError(f"{key}: {v} is out of range; it must be {symbol} {bound}")


# --------------------------------------------------------------------------------------------------
# Serialisation
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
