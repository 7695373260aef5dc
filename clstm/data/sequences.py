"""How clstm represents a batch of variable-length sequences and turns datasets into experiences.

A batch is one right-padded float tensor ``x`` of shape ``(B, T, F + 1)``: the first ``F`` channels
are the features, the last channel is a validity mask (1.0 at a sequence's real steps, 0.0 at
padding). Because lengths travel inside ``x``, every Avalanche strategy, buffer and data loader that
moves ``mb_x`` around as a plain tensor keeps them, and the model can read each sequence's output at
its true last step (see :class:`clstm.models.RecurrentEncoder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def pad_sequences(sequences: Sequence[np.ndarray], max_len: int | None = None) -> torch.Tensor:
    """Right-pad ``(T_i, F)`` arrays into one ``(N, T, F + 1)`` float32 tensor with a mask channel.

    ``T`` is ``max_len`` if given, else the longest sequence.
    """
    if len(sequences) == 0:
        raise ValueError("cannot pad an empty list of sequences")
    n_features = sequences[0].shape[1]
    lengths = [len(s) for s in sequences]
    t_max = max(lengths) if max_len is None else max_len
    out = torch.zeros(len(sequences), t_max, n_features + 1, dtype=torch.float32)
    for i, seq in enumerate(sequences):
        out[i, : lengths[i], :n_features] = torch.as_tensor(seq, dtype=torch.float32)
        out[i, : lengths[i], n_features] = 1.0
    return out


def split_mask(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a padded batch ``(B, T, F + 1)`` into features ``(B, T, F)`` and lengths ``(B,)``."""
    if x.dim() != 3 or x.shape[-1] < 2:
        raise ValueError(
            f"expected a padded batch (B, T, F + 1) with a mask channel, got shape {tuple(x.shape)}"
        )
    lengths = x[..., -1].sum(dim=1).round().long()  # (B,)
    return x[..., :-1], lengths


class SequenceDataset(torch.utils.data.Dataset):
    """Padded sequences ``(N, T, F + 1)`` with integer labels; items are ``(x_i, y_i)``.

    ``targets`` is what Avalanche's classification datasets read to know the classes.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} sequences but y has {len(y)} labels")
        self.x = x  # (N, T, F + 1)
        self.y = y.long()  # (N,)
        self.targets = self.y.tolist()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]


def classification_dataset(x: torch.Tensor, y: torch.Tensor) -> Any:
    """Wrap padded sequences and labels as an Avalanche classification dataset (one experience)."""
    from avalanche.benchmarks.utils.utils import as_classification_dataset

    return as_classification_dataset(SequenceDataset(x, y))


@dataclass
class SequenceBenchmark:
    """An Avalanche benchmark of sequence-classification experiences plus what the model needs.

    ``scenario`` has ``train_stream`` and ``test_stream`` with one experience per dataset.
    """

    scenario: Any
    n_features: int
    n_classes: int
    experience_names: list[str]

    @property
    def n_experiences(self) -> int:
        return len(self.experience_names)


def benchmark_from_padded(
    train: Sequence[tuple[torch.Tensor, torch.Tensor]],
    test: Sequence[tuple[torch.Tensor, torch.Tensor]],
    names: Sequence[str],
) -> SequenceBenchmark:
    """Frame padded ``(x, y)`` datasets as an Avalanche benchmark, one dataset per experience.

    Uses Avalanche's ``benchmark_from_datasets``; the experiences carry no task labels (one shared
    head: domain-incremental).
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    scenario = benchmark_from_datasets(
        train=[classification_dataset(x, y) for x, y in train],
        test=[classification_dataset(x, y) for x, y in test],
    )
    n_features = train[0][0].shape[-1] - 1
    n_classes = int(max(int(y.max()) for _, y in [*train, *test])) + 1
    return SequenceBenchmark(
        scenario=scenario, n_features=n_features, n_classes=n_classes, experience_names=list(names)
    )
