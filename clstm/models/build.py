"""The model a config describes, shaped for its benchmark (:func:`build_model`), and its size."""

from __future__ import annotations

import torch
from torch import nn

from clstm.models.encoder import RecurrentEncoder
from clstm.models.heads import SequenceClassifier, TaskInputProjection
from clstm.targets import SEQUENCE, kind_named

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def parameter_count(config, benchmark) -> int:
    """The number of parameters :func:`build_model` would create, computed without building it.

    Recurrent layers (``gates * h * (inputs + h + 2)`` per layer and direction), the projection
    adapters and the heads (one per experience in the task scenario). Used to refuse models that
    cannot fit in memory before anything is allocated or written.
    """
    h, gates = config.hidden_size, _GATES[config.type]
    directions = 2 if config.bidirectional else 1
    projection = config.adapter == "projection"
    inputs = config.adapter_size if projection else benchmark.n_features
    total = 0
    for layer in range(config.num_layers):
        width = inputs if layer == 0 else h * directions
        total += directions * gates * h * (width + h + 2)
    if config.elman_output:
        total += h * (h + 1)
    out = h * directions
    features = benchmark.features_per_experience or [benchmark.n_features]
    if projection:
        total += sum((f + 1) * config.adapter_size for f in features)
    heads = benchmark.n_experiences if benchmark.scenario_name == "task" else 1
    return total + heads * (out + 1) * benchmark.n_classes


def init_orthogonal_hh(rnn: nn.RNNBase) -> None:
    """Orthogonal hidden-to-hidden weights, one ``(H, H)`` block per gate."""
    gates = _GATES[{nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}[type(rnn)]]
    with torch.no_grad():
        for name, weight in rnn.named_parameters():
            if name.startswith("weight_hh"):
                for block in weight.chunk(gates, dim=0):
                    nn.init.orthogonal_(block)


def build_model(config, *, benchmark, stateful: bool = False) -> nn.Module:
    """The classifier a :class:`clstm.config.ModelConfig` describes, shaped for ``benchmark``.

    - ``domain``: one linear head over all classes;
    - ``class``: Avalanche's ``IncrementalClassifier`` (grows with the classes seen, masks others);
    - ``task``: :class:`MultiTaskSequenceClassifier`, one head per task (Avalanche's
      ``MultiHeadClassifier``) and, with ``adapter: projection``, one input projection per task.
    """
    scenario = benchmark.scenario_name
    kind = kind_named(getattr(benchmark, "target", SEQUENCE.name))
    if not kind.classes and scenario == "class":
        raise ValueError(
            f"{kind.name} targets have no growing class head: use benchmark.scenario "
            "domain (one shared head) or task (one head per task)"
        )
    projection = config.adapter == "projection"
    if projection and scenario != "task":
        raise ValueError(
            "model.adapter: projection needs task labels to pick each dataset's projection; "
            "use benchmark.scenario: task, or model.adapter: pad"
        )
    encoder = RecurrentEncoder(
        n_features=config.adapter_size if projection else benchmark.n_features,
        cell=config.type,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        dropout=config.dropout,
        bidirectional=config.bidirectional,
        stateful=stateful,
        packing=config.packing,
        per_step=kind.per_step,
        elman_output=config.elman_output,
    )
    if config.init_hh == "orthogonal":
        init_orthogonal_hh(encoder.rnn)
    if scenario == "task":
        from clstm.models.multitask import MultiTaskSequenceClassifier

        features = (
            benchmark.features_per_experience or [benchmark.n_features] * benchmark.n_experiences
        )
        adapters = (
            [TaskInputProjection(f, config.adapter_size) for f in features] if projection else None
        )
        if not kind.classes:  # one head per task, of one width, made up front
            from clstm.models.multitask import FixedTaskHeads

            return FixedTaskHeads(
                encoder, benchmark.n_classes, benchmark.n_experiences, adapters=adapters,
                dropout=config.dropout,
            )  # fmt: skip
        return MultiTaskSequenceClassifier(encoder, adapters=adapters, dropout=config.dropout)
    if scenario == "class":
        from avalanche.models import IncrementalClassifier

        first = len((benchmark.classes_per_experience or [[0, 1]])[0])
        head = IncrementalClassifier(encoder.out_features, initial_out_features=first)
        return SequenceClassifier(encoder, head=head, dropout=config.dropout)
    return SequenceClassifier(encoder, benchmark.n_classes, dropout=config.dropout)
