"""Keeping some experiences of a stream (``benchmark.experiences``), renumbered from 0.

``clstm tune`` with ``selection: experiences`` searches on the first K experiences of a stream
(the validation tasks) and runs the chosen setting on the others (the final stream), as Cossu et
al. 2021 and TSCIL do: :func:`select_experiences` makes either part a benchmark of its own, whose
experiences are numbered from 0 (task labels too, in the task scenario), so its matrices, heads
and logs are those of an ordinary run on that stream.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from clstm.data.sequences import SequenceBenchmark
from clstm.errors import DataError


def select_experiences(bench: SequenceBenchmark, keep: Sequence[int]) -> SequenceBenchmark:
    """``bench`` with only the experiences ``keep`` (indices in increasing order), renumbered.

    The samples keep their padded shape, classes and label maps (the model is built for the
    whole stream's inputs and classes); the fingerprint is the whole stream's with ``keep``.
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    keep = list(keep)
    n = bench.n_experiences
    outside = [i for i in keep if not 0 <= i < n]
    if not keep or outside:
        raise DataError(
            f"experiences: {outside[0] if outside else '[]'} is not an experience of this "
            f"stream, which has {n} (0 to {n - 1})"
        )
    task = bench.scenario_name == "task"
    streams = {}
    for name, stream in bench.scenario.streams.items():
        experiences = list(stream)
        streams[name] = [
            _with_task(experiences[i].dataset, position) if task else experiences[i].dataset
            for position, i in enumerate(keep)
        ]
    scenario = benchmark_from_datasets(**streams)
    if task:
        scenario = with_task_labels(scenario)
    if bench.kind.classes:
        scenario = with_classes_timeline(scenario)

    def part(values):
        return None if values is None or len(values) != n else [values[i] for i in keep]

    digest = hashlib.sha256(f"{bench.fingerprint}|experiences={keep}".encode()).hexdigest()
    return dataclasses.replace(
        bench,
        scenario=scenario,
        experience_names=[bench.experience_names[i] for i in keep],
        features_per_experience=part(bench.features_per_experience),
        classes_per_experience=part(bench.classes_per_experience),
        label_maps=part(bench.label_maps) or bench.label_maps,
        arrival_times=part(bench.arrival_times),
        fingerprint=digest if bench.fingerprint else None,
    )


def _with_task(dataset, task: int):
    """``dataset`` whose items and task-label attribute say ``task``.

    Avalanche 0.6's ``update_data_attribute`` replaces the attribute that items read, but the
    copy keeps the old one as an instance attribute (``dataset.targets_task_labels``, which
    ``with_task_labels`` and the strategies read): set it to the new one too.
    """
    from avalanche.benchmarks.utils import ConstantSequence, TaskLabels

    name = "targets_task_labels"
    labels = TaskLabels(ConstantSequence(task, len(dataset)))
    updated = dataset.update_data_attribute(name, labels)
    setattr(updated, name, updated._data_attributes[name])
    return updated
