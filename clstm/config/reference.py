"""The configuration reference (``docs/configuration.md``), rendered from the config dataclasses.

``python -m clstm.config`` prints it; ``python -m clstm.config --update docs/configuration.md``
rewrites the page between its markers (a test fails when the committed page is stale).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import fields
from pathlib import Path

from clstm.config.schema import BOUNDS, field_default, type_name
from clstm.config.sections import (
    EvalConfig,
    ExperimentConfig,
    ModelConfig,
    OnlineConfig,
    TrainConfig,
)


def _reference_rows(cls: type, prefix: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in fields(cls):
        hint = hints[f.name]
        if f.metadata.get("select") is not None or dataclasses.is_dataclass(hint):
            continue
        default = field_default(f)
        shown = json.dumps(list(default) if isinstance(default, tuple) else default)
        bounds = [
            f"{sym} {f.metadata[n]}"
            for n, (_, sym) in BOUNDS.items()
            if f.metadata.get(n) is not None
        ]
        kind = type_name(hint) + (f" ({', '.join(bounds)})" if bounds else "")
        rows.append(f"| `{prefix}{f.name}` | {kind} | `{shown}` | {f.metadata.get('help', '')} |")
    return rows


def reference_markdown() -> str:
    """The configuration reference, rendered from the config dataclasses' defaults and help."""
    from clstm.data.catalog import scenarios
    from clstm.data.registry import BENCHMARKS, benchmark_config_class
    from clstm.strategies.registry import STRATEGIES, strategy_config_class

    header = ["| key | type | default | meaning |", "|---|---|---|---|"]
    out = ["#### Top level and shared sections", "", *header]
    out += _reference_rows(ExperimentConfig, "")
    for section, cls in (("model", ModelConfig), ("train", TrainConfig), ("eval", EvalConfig),
                         ("online", OnlineConfig)):  # fmt: skip
        out += _reference_rows(cls, section + ".")
    sections = (
        ("Benchmark", BENCHMARKS, benchmark_config_class),
        ("Strategy", STRATEGIES, strategy_config_class),
    )
    for title, registry, select in sections:
        key = title.lower()
        for name in registry:
            rows = _reference_rows(select(name), key + ".")
            out += ["", f"#### {title} `{key}.name: {name}`", ""]
            if key == "benchmark" and name != "python":
                supported = scenarios(name)
                out += [f"Scenarios (with the default options): {supported[0]} (the default), "
                        f"{', '.join(supported[1:]) or 'no other'}.", ""]  # fmt: skip
            out += [*header, *rows] if rows else ["No options."]
    return "\n".join(out) + "\n"


def update_page(path: str | Path) -> None:
    """Replace the reference between the page's ``config-reference`` markers with the current
    one."""
    path = Path(path)
    text = path.read_text()
    start, end = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{reference_markdown()}{end}{tail}")
