"""How clstm reads YAML: configs, ``key=value`` overrides and grid values.

YAML 1.2 booleans (``off`` and ``no`` stay strings), no duplicate keys, and no document whose
aliases expand beyond :data:`MAX_YAML_NODES` nodes. Imports PyYAML only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from clstm.errors import ConfigError

#: a YAML document that expands (through aliases) to more nodes than this is refused
MAX_YAML_NODES = 100_000


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans (only true/false) and no duplicate keys.

    Why: PyYAML implements YAML 1.1, where ``checkpoint: off`` reads as ``False`` and a
    dataset called ``no`` as a boolean; clstm's configs mean those words as strings. And PyYAML
    lets a second ``train:`` block silently replace the first; here that is an error.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key '{key}' (each key may appear once)",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` becomes once every alias is expanded (each node counted once)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once instead of forever
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    memo[key] = 1 + sum(_expanded_nodes(child, memo) for child in children)
    return memo[key]


def load_yaml(text: str) -> Any:
    """Parse YAML text as clstm reads configs, overrides and grid values.

    YAML 1.2 booleans, no duplicate keys, and no document that aliases expand beyond
    :data:`MAX_YAML_NODES` nodes (a "billion laughs" would otherwise take minutes and gigabytes
    once a sweep copies it). Raises ``yaml.YAMLError``.
    """
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_nodes(node, {})
        if size > MAX_YAML_NODES:
            raise yaml.YAMLError(
                f"the document expands to {size:,} values through aliases (at most "
                f"{MAX_YAML_NODES:,} allowed)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path, expected: str | None = None) -> dict[str, Any]:
    """The top-level mapping of a YAML config file; :class:`ConfigError` if missing or malformed.
    ``expected`` describes what other kind of mapping file it is (default: an experiment config)
    in the error for a file that is not a mapping."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file; give a YAML file in it")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path} is not a regular file (a device or a pipe); give a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
            "save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or (str(exc) if exc.args else "invalid YAML")
        raise ConfigError(f"{path}: {problem}{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        hint = (
            ""
            if path.suffix.lower() in (".yaml", ".yml")
            else f" (a {path.suffix or 'file'} file?)"
        )
        expected = expected or (
            "clstm experiment config{hint}: expected YAML sections such as 'train:' and "
            "'strategy:' at the top level, but it reads as {kind}; see experiments/quickstart.yaml"
        )
        raise ConfigError(f"{path} is not a " + expected.format(hint=hint, kind=kind))
    return data
