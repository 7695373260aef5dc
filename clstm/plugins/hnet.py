"""HNET (Ehret et al., "Continual learning in recurrent neural networks", ICLR 2021; their code
``mariacer/cl_in_rnns``): a task-conditioned hypernetwork generates every weight of the recurrent
network, and an output regulariser keeps the weights it generates for earlier tasks where they
were.

- :class:`ChunkedHypernetwork` (their ``hnets/chunked_mlp_hnet.py``, ``ChunkedHMLP``): the main
  network's weights, flattened, are cut into chunks of ``chunk_size``; one MLP maps
  ``[task embedding, chunk embedding]`` to each chunk (hidden layers ``hidden``, ReLU, a linear
  output), and the chunks are concatenated and cut to the weights' count. Task embeddings start
  N(0, 1), chunk embeddings (shared by the tasks) N(0, 0.1), the MLP's layers as PyTorch
  initialises them (their defaults: ``--std_normal_temb=1.0 --std_normal_emb=0.1``, no hyperfan
  initialisation).
- :class:`HyperModel`: clstm's model whose weights are all generated (their ``--hnet_all``:
  recurrent layer, Elman output layer, heads, biases). The model's own weights become buffers
  (they give the shapes only); its forward runs the model with the weights generated for each
  task label (``torch.func.functional_call``). Only the hypernetwork and the embeddings are
  trained.
- :class:`HNETPlugin`: before each experience after the first, the weights generated for every
  earlier task are kept (detached); every training iteration then adds
  ``beta * mean_{i < t} sum((W_i^kept - W_i)^2)`` over each earlier task's shared weights and its
  own head (their ``calc_fix_target_reg``, without the look-ahead, as their runs). Earlier task
  embeddings stay trainable, as theirs.

Main-network fine-tuning (their baseline without ``--hnet_all``) is the ``naive`` strategy on the
same model.
"""

from __future__ import annotations

import math

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import MultiTaskModule
from torch import nn


class ChunkedHypernetwork(nn.Module):
    """``forward(task) -> (n_weights,)``: the weights generated for ``task`` (module docstring)."""

    def __init__(self, n_weights: int, n_tasks: int, *, chunk_size: int = 2500,
                 hidden: tuple[int, ...] = (50, 50), task_emb: int = 32,
                 chunk_emb: int = 32):  # fmt: skip
        super().__init__()
        self.n_weights, self.chunk_size = n_weights, chunk_size
        n_chunks = math.ceil(n_weights / chunk_size)
        self.task_embs = nn.Parameter(torch.randn(n_tasks, task_emb))
        self.chunk_embs = nn.Parameter(0.1 * torch.randn(n_chunks, chunk_emb))
        layers, width = [], task_emb + chunk_emb
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, chunk_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, task: int) -> torch.Tensor:
        emb = self.task_embs[task].expand(len(self.chunk_embs), -1)
        chunks = self.mlp(torch.cat([emb, self.chunk_embs], dim=1))  # (n_chunks, chunk_size)
        return chunks.flatten()[: self.n_weights]


def _weights_to_buffers(model: nn.Module) -> list[tuple[str, torch.Size]]:
    """Turns every parameter of ``model`` into a buffer of the same name; their names and
    shapes, in order."""
    shapes = [(name, p.shape) for name, p in model.named_parameters()]
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                del module._parameters[name]
                module.register_buffer(name, p.detach().clone())
    return shapes


class HyperModel(MultiTaskModule):
    """A clstm model (one fixed head per task, or one shared head) whose weights the
    hypernetwork generates for each task label (module docstring)."""

    def __init__(self, model: nn.Module, n_tasks: int, **hnet_options):
        super().__init__()
        if any(type(m).__name__ in ("IncrementalClassifier", "MultiHeadClassifier")
               for m in model.modules()):  # fmt: skip
            raise ValueError(
                "hnet generates a fixed set of weights: its model cannot grow heads (use the "
                "task scenario with per-step or regression targets, or the domain scenario)"
            )
        self.shapes = _weights_to_buffers(model)
        self.target = model
        n_weights = sum(math.prod(shape) for _, shape in self.shapes)
        self.hnet = ChunkedHypernetwork(n_weights, n_tasks, **hnet_options)
        rnn = next((m for m in model.modules() if isinstance(m, nn.RNNBase)), None)
        self.gates = {nn.LSTM: 4, nn.GRU: 3}.get(type(rnn), 1)
        self.generated_hh: list[torch.Tensor] = []  # the last forward's hidden-to-hidden weights

    def __getstate__(self):  # the last forward's weights (and their graph) stay out of checkpoints
        state = dict(self.__dict__)
        state["generated_hh"] = []
        return state

    def adaptation(self, experience) -> None:
        # Why overridden: MultiTaskModule.adaptation reads the experience's classes, which
        # per-step targets do not have; only the task labels matter here.
        if self.training:
            self.known_train_tasks_labels |= set(experience.task_labels)

    def hidden_to_hidden(self) -> list[torch.Tensor]:
        """The hidden-to-hidden blocks of the weights generated in the last forward (for
        ``train.orthogonal_reg``)."""
        return [block for w in self.generated_hh for block in w.chunk(self.gates, dim=0)]

    def summary(self) -> str:
        n_hnet = sum(p.numel() for p in self.hnet.parameters())
        return (
            f"hnet: a hypernetwork of {n_hnet:,} parameters generates the {self.hnet.n_weights:,} "
            f"weights of the recurrent network (ratio {n_hnet / self.hnet.n_weights:.3f})"
        )

    @property
    def gathers_steps(self) -> bool:
        return getattr(self.target, "gathers_steps", False)

    def weights(self, task: int, flat: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The main network's weights for ``task``, by name."""
        flat = self.hnet(task) if flat is None else flat
        out, start = {}, 0
        for name, shape in self.shapes:
            size = math.prod(shape)
            out[name] = flat[start : start + size].view(shape)
            start += size
        return out

    def forward_single_task(self, x, task_label: int, steps=None):
        weights = self.weights(int(task_label))
        self.generated_hh = [w for name, w in weights.items() if "weight_hh" in name]
        multi = isinstance(self.target, MultiTaskModule)
        args = (x, int(task_label)) if multi else (x,)
        kwargs = {"steps": steps} if steps is not None else {}
        return torch.func.functional_call(self.target, weights, args, kwargs)

    def forward(self, x, task_labels, steps=None):
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels, steps)
        tasks = torch.unique(task_labels).tolist()
        if len(tasks) == 1:
            return self.forward_single_task(x, tasks[0], steps)
        outs = {}
        for task in tasks:
            rows = task_labels == task
            outs[task] = (rows, self.forward_single_task(
                x[rows], task, None if steps is None else steps[rows]))  # fmt: skip
        first = outs[tasks[0]][1]
        shape = [max(o.shape[d] for _, o in outs.values()) for d in range(1, first.dim())]
        out = first.new_zeros(len(x), *shape)  # per-step outputs: to the longest group's steps
        for rows, o in outs.values():
            out[(rows, *(slice(0, s) for s in o.shape[1:]))] = o
        return out

    def head_of(self, name: str) -> int | None:
        """The task whose head a weight belongs to (``heads.<k>.``), or None (shared)."""
        parts = name.split(".")
        return int(parts[1]) if parts[0] == "heads" and parts[1].isdigit() else None

    def kept_weights(self, task: int) -> torch.Tensor:
        """``(n_weights,)`` bool: the weights regularised for ``task``: the shared ones and its
        own head's (their ``flatten_and_remove_out_heads``)."""
        keep = []
        for name, shape in self.shapes:
            head = self.head_of(name)
            keep.append(torch.full((math.prod(shape),), head is None or head == task))
        return torch.cat(keep)


class HNETPlugin(SupervisedPlugin):
    """The output regulariser (module docstring). :param beta: its weight."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta
        self.kept: dict[int, torch.Tensor] = {}  # task -> its weights before this experience

    def before_training_exp(self, strategy, **kwargs):
        model = strategy.model
        task = int(strategy.experience.task_label)
        with torch.no_grad():
            self.kept = {i: model.hnet(i).detach() for i in range(task)}

    def before_backward(self, strategy, **kwargs):
        if not self.kept or not self.beta:
            return
        model = strategy.model
        terms = []
        for i, kept in self.kept.items():
            mask = model.kept_weights(i).to(kept.device)
            terms.append(((kept - model.hnet(i)) * mask).pow(2).sum())
        strategy.loss = strategy.loss + self.beta * torch.stack(terms).mean()
