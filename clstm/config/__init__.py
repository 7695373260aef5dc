"""Typed, frozen experiment configuration: the first stage of a run.

An experiment is a YAML file with the sections ``benchmark``, ``model``, ``strategy``, ``train`` and
``eval`` plus a few top-level keys; :func:`load_config` reads and validates it into an
:class:`ExperimentConfig`. Modules:

- :mod:`~clstm.config.schema`: :func:`param` and the building blocks every section is declared with;
- :mod:`~clstm.config.sections`: the shared sections and :class:`ExperimentConfig` (benchmark and
  strategy sections live beside their code, found through their registries);
- :mod:`~clstm.config.loading`: YAML, ``--set`` overrides, validation, serialisation;
- :mod:`~clstm.config.yamlio`: how clstm reads YAML (1.2 booleans, no duplicate keys);
- :mod:`~clstm.config.reference`: the generated reference page (``python -m clstm.config``).

Nothing here imports torch or Avalanche.
"""

from clstm.config.loading import (
    apply_override,
    build,
    config_hash,
    load_config,
    to_dict,
    to_yaml,
)
from clstm.config.reference import reference_markdown
from clstm.config.schema import (
    MAX_SEED,
    StreamOptions,
    check_fits_in_memory,
    param,
    physical_memory,
    type_name,
)
from clstm.config.sections import (
    EvalConfig,
    ExperimentConfig,
    ModelConfig,
    OnlineConfig,
    TrainConfig,
)
from clstm.errors import ConfigError

__all__ = [
    "MAX_SEED", "ConfigError", "EvalConfig", "ExperimentConfig", "ModelConfig", "OnlineConfig",
    "StreamOptions",
    "TrainConfig", "apply_override", "build", "check_fits_in_memory", "config_hash", "load_config",
    "param", "physical_memory", "reference_markdown", "to_dict", "to_yaml", "type_name",
]  # fmt: skip
