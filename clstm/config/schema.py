"""The building blocks of config sections, in a leaf module that the sections' owners import.

Benchmarks and strategies declare their config dataclasses beside their code with :func:`param`
(and benchmarks inherit :class:`StreamOptions`); :mod:`clstm.config` assembles them into an
experiment through the registries. Keeping these here, apart from :mod:`clstm.config`, makes the
imports go one way: config -> registries -> benchmark/strategy modules -> schema -> errors.
No heavy imports here.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union

#: the largest seed numpy and scikit-learn accept (they need a 32-bit unsigned integer)
MAX_SEED = 2**32 - 1
#: what an experiment name may be: one folder name (it is the first folder of its runs)
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
#: the longest experiment or run name (a folder name; longer generated run names are cut)
MAX_NAME = 120


def param(default: Any = dataclasses.MISSING, help: str = "", **constraints: Any) -> Any:
    """Declare a config field with its default, help text and numeric constraints.

    ``constraints`` may hold ``ge``, ``gt``, ``le``, ``lt`` (inclusive/exclusive bounds checked on
    numbers and on each element of a tuple), and ``default_factory`` for mutable defaults.
    """
    factory = constraints.pop("default_factory", dataclasses.MISSING)
    unknown = set(constraints) - {"ge", "gt", "le", "lt", "pattern", "select", "owners"}
    if unknown:
        raise TypeError(f"unknown constraint(s) {sorted(unknown)}")
    metadata = {"help": help, **constraints}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class StreamOptions:
    """Options every benchmark shares (benchmark configs inherit them)."""

    scenario: Literal["auto", "domain", "task", "class"] = param(
        "auto",
        "domain: one shared head, no task labels; task: task label = experience, one head each; "
        "class: one growing head over the classes seen, no task labels; auto: the benchmark's "
        "own (each benchmark's scenarios are listed under it)",
    )
    standardize: bool = param(
        True, "standardise each dataset per feature, fitted on its own training split only"
    )
    validation: float = param(
        0.0,
        "fraction of each training set held out (stratified) as the validation stream",
        ge=0.0,
        lt=0.9,
    )
    experiences: tuple[int, ...] | None = param(
        None,
        "keep only these experiences of the stream, by index in increasing order, renumbered "
        "from 0 (e.g. [3, 4, 5]); null: all. clstm tune sets it for its validation tasks and final "
        "stream (tune.selection: experiences)",
        ge=0,
    )

    def _settle_scenario(self, allowed: tuple[str, ...]) -> None:
        """Resolve ``auto`` to ``allowed[0]`` (the benchmark's natural scenario), check the rest."""
        if self.scenario == "auto":
            object.__setattr__(self, "scenario", allowed[0])  # frozen: settled once, at creation
        elif self.scenario not in allowed:
            raise ValueError(
                f"benchmark.scenario: '{self.scenario}' is not supported by benchmark "
                f"'{self.name}'; choose one of {', '.join(allowed)}"  # type: ignore[attr-defined]
            )


def check_experiences(experiences: tuple[int, ...] | None) -> None:
    """``benchmark.experiences`` lists indices in increasing order, each once."""
    if experiences is not None and list(experiences) != sorted(set(experiences)):
        raise ValueError(
            f"benchmark.experiences: {list(experiences)} must list experience indices in "
            "increasing order, each once (e.g. [3, 4, 5])"
        )


def physical_memory() -> int | None:
    """This machine's RAM in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse (ValueError, one line) sizes whose data alone would exceed this machine's RAM."""
    total = physical_memory()
    if total and nbytes > total:
        raise ValueError(
            f"{what} needs about {nbytes / 2**30:,.1f} GiB, more than the "
            f"{total / 2**30:,.1f} GiB of memory here; {fix}"
        )


def check_threads(threads: int | None, *, cli: bool = False) -> None:
    """Refuse a thread count that is not an integer >= 1 (``None``: the default)."""
    from clstm.errors import ConfigError

    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        message = f"threads must be an integer >= 1, got {threads!r}"
        raise ConfigError(message, cli="--" + message)


def did_you_mean(name: str, choices: list[str]) -> str:
    """`` (did you mean 'replay'?)`` for a mistyped name (case-insensitive), else ``""``."""
    import difflib

    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def field_default(f: dataclasses.Field) -> Any:
    """A config field's default value (its factory called, for mutable defaults)."""
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


#: the numeric constraints of :func:`param`: name -> (check, symbol in messages)
BOUNDS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "ge": (lambda v, b: v >= b, ">="),
    "gt": (lambda v, b: v > b, ">"),
    "le": (lambda v, b: v <= b, "<="),
    "lt": (lambda v, b: v < b, "<"),
}


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
