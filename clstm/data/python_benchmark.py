"""How a run records a benchmark that was passed from Python instead of named in its config.

``run_experiment(config, benchmark=bench)`` runs on data the config does not describe. So that the
run's ``config.yaml`` never claims another experiment (for example the synthetic defaults), its
``benchmark`` section is replaced by this one::

    benchmark:
      name: python
      scenario: task
      experiences: [walking, speech]
      fingerprint: 3f2a...   # SHA-256 of every sample of every stream, in order

The fingerprint makes the run's identity change with the data (two different datasets never share
a run folder silently, and ``--resume`` with other data is refused). ``clstm run`` on such a
``config.yaml`` stops with a one-line message: the data are not in the file; re-run it from Python
with the same benchmark.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from clstm.config.schema import param
from clstm.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """The record of a benchmark passed from Python (cannot be built from a config)."""

    name: Literal["python"] = param("python", "benchmark")
    scenario: Literal["domain", "task", "class"] = param(
        "domain", "the scenario the benchmark was framed in"
    )
    experiences: tuple[str, ...] = param(("exp0",), "experience names, in order")
    fingerprint: str = param(
        "", "SHA-256 of every sample (inputs, labels, task labels) of every stream, in order"
    )


def fingerprint(bench: Any) -> str:
    """SHA-256 of the benchmark's data.

    A :class:`SequenceBenchmark` from :func:`clstm.benchmark_from_arrays` carries one, computed
    from its tensors when they were made (milliseconds). For other benchmarks: every sample of
    every stream (train, test, valid), in stream order, read once (about 13 us a sample through
    Avalanche's dataset layers).
    """
    import torch

    if getattr(bench, "fingerprint", None):
        return bench.fingerprint
    digest = hashlib.sha256()
    streams = getattr(bench.scenario, "streams", None) or {
        "train": bench.scenario.train_stream,
        "test": bench.scenario.test_stream,
    }
    for name in sorted(streams):
        digest.update(name.encode())
        for experience in streams[name]:
            digest.update(b"|experience|")
            dataset = experience.dataset
            for i in range(len(dataset)):
                for element in dataset[i]:
                    if isinstance(element, torch.Tensor):
                        digest.update(element.detach().cpu().contiguous().numpy().tobytes())
                    else:
                        digest.update(repr(element).encode())
    return digest.hexdigest()


def describe(bench: Any) -> dict[str, Any]:
    """The ``benchmark`` config section recorded for a :class:`SequenceBenchmark` from Python."""
    return {
        "name": "python",
        "scenario": bench.scenario_name,
        "experiences": list(bench.experience_names),
        "fingerprint": fingerprint(bench),
    }


def build(config: Config):
    """Refused: the data of a benchmark passed from Python are not in the config."""
    raise ConfigError(
        "benchmark 'python': this config records a run whose benchmark was passed from Python "
        f"(run_experiment(config, benchmark=...), data fingerprint {config.fingerprint[:12]}); "
        "the data are not in the file: run it again from Python with the same benchmark"
    )
