"""Continual evaluation (De Lange, van de Ven & Tuytelaars, ICLR 2023): every experience seen so
far, evaluated every ``eval.every`` training iterations, so the stability gap shows.

:class:`ContinualEvalPlugin` evaluates the model on a fixed subsample of each experience of the
evaluated streams (``test``, and ``valid`` when the run has one; ``valid`` alone with
``eval.test: false``): every experience trained so far plus the current one, after every
``every``-th training iteration (counted over the whole run) and at the end of every training
experience (the boundaries). The subsamples (``eval.subsample`` sequences per experience) are
drawn once per run by a numpy generator of their own, from the run's seed; the evaluation runs the
model in eval mode without gradients, calls no other plugin and draws from no global RNG, so the
run trains exactly as it would without it (a test checks the matrices are equal). Its records
(iteration, experience trained, experience tested, stream, measure, value) are pickled with the
strategy in every checkpoint, so a resumed run's curves continue where they stopped.

With ``background`` (``eval.background: true``), each evaluation runs on a copy of the model
taken at its iteration, in a second thread, while training goes on: the same values (the copy
holds that iteration's weights; a test checks the records are equal), at the cost of a second
core. The next evaluation, the end of each experience and every checkpoint wait for it first, so
records stay in order and a checkpoint never misses one.

Avalanche's ``eval_every`` evaluates a whole stream through the strategy's own evaluation (its
periodic mode evaluated the wrong stream: avalanche issues #1114, #1148, #1093), which also runs
every metric and logger of the run; this plugin evaluates beside it and leaves them alone.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.models.utils import is_multi_task_module

from clstm.targets import carried_steps

#: the name of each measure's curves, in TensorBoard tags and curves.csv
SHORT = {"accuracy": "acc", "mse": "mse", "mae": "mae"}


class ContinualEvalPlugin(SupervisedPlugin):
    """Evaluate every seen experience every ``every`` training iterations (module docstring)."""

    def __init__(self, streams: dict, *, every: int, subsample: int, seed: int, kind,
                 batch_size: int, writer=None, seen_all: bool = False,
                 background: bool = False):  # fmt: skip
        super().__init__()
        self.every, self.subsample, self.kind = every, subsample, kind
        self.batch_size, self.background = batch_size, background
        self.measured = -1  # the iteration of the last evaluation
        self._due = False  # an evaluation is due before the next iteration
        self.seen_all = seen_all  # joint: every experience is trained from the start
        self.iteration = 0  # training iterations over the whole run
        self.records: list[tuple] = []  # (iteration, trained, stream, tested, measure, value)
        rng = np.random.default_rng([seed, 0xC0E7])  # its own generator: no global RNG drawn
        self.indices = {
            name: [
                np.sort(rng.choice(len(e.dataset), min(subsample, len(e.dataset)), replace=False))
                for e in stream
            ]
            for name, stream in streams.items()
        }
        self.attach(streams, writer)

    def attach(self, streams: dict, writer=None) -> None:
        """The streams (and TensorBoard writer) to evaluate on; again after a checkpoint loads."""
        self._streams, self._writer, self._batches = streams, writer, {}
        self._pool, self._pending = None, None

    def __getstate__(self):  # the records and indices go into checkpoints, not the data
        self.wait()  # a checkpoint holds every evaluation made before it
        state = dict(self.__dict__)
        for key in ("_streams", "_writer", "_batches", "_pool", "_pending"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("background", False)
        self.__dict__.setdefault("measured", self.records[-1][0] if self.records else -1)
        self.__dict__.setdefault("_due", False)
        self._streams, self._writer, self._batches = {}, None, {}
        self._pool, self._pending = None, None

    def after_training_iteration(self, strategy, *args, **kwargs):
        self.iteration += 1
        if self.every and self.iteration % self.every == 0:
            # measured at the next iteration's start (the same weights), or, when this was the
            # experience's last, at its end: after every plugin's end-of-experience work
            # (fasticarl's class means), as the matrix is
            self._due = True

    def before_training_iteration(self, strategy, *args, **kwargs):
        if self._due:
            self._due = False
            self._evaluate(strategy)

    def after_training_exp(self, strategy, *args, **kwargs):
        self._due = False
        if self.measured != self.iteration:  # not measured just now
            self._evaluate(strategy)
        self.wait()  # the boundary's values are in before anything reads the records

    def after_training(self, strategy, *args, **kwargs):
        self.wait()
        if self._pool is not None:  # its thread ends; a later training call makes a new one
            self._pool.shutdown()
            self._pool = None

    def wait(self) -> None:
        """Record the evaluation running in the background, if any (it is waited for)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._record(pending.result())

    def _evaluate(self, strategy) -> None:
        self.wait()
        self.measured = self.iteration
        trained = int(strategy.experience.current_experience)
        if not self.background:
            self._record(self._measure(strategy.model, trained, self.iteration, strategy.device))
            return
        model = copy.deepcopy(strategy.model)  # this iteration's weights; training goes on
        for module in model.modules():  # a copied cuDNN RNN's weights are no longer one block
            if isinstance(module, torch.nn.RNNBase):
                module.flatten_parameters()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="clstm-continual-eval")
        self._pending = self._pool.submit(
            self._measure, model, trained, self.iteration, strategy.device
        )

    def _record(self, records: list[tuple]) -> None:
        for record in records:
            self.records.append(record)
            self._log(*record)

    def _batch(self, name: str, j: int, device) -> list[tuple]:
        """Experience ``j``'s subsample as evaluation batches, made once: sorted by length and,
        for one target per sequence, each cut to its longest sequence (inputs are right-padded
        and read at each sequence's last real step, so this is exact), as training batches are."""
        key = (name, j)
        if key not in self._batches:
            dataset = list(self._streams[name])[j].dataset
            items = [dataset[int(i)] for i in self.indices[name][j]]
            x, y, t = (torch.stack([torch.as_tensor(item[k]) for item in items]) for k in (0, 1, 2))
            lengths = x[..., -1].sum(dim=1).long()
            order = torch.argsort(lengths, stable=True)
            x, y, t, lengths = x[order], y[order], t[order], lengths[order]
            per_sequence = not self.kind.per_step
            batches = []
            for start in range(0, len(x), self.batch_size):
                rows = slice(start, start + self.batch_size)
                steps = int(lengths[rows].max()) if per_sequence else x.shape[1]
                batches.append(tuple(v.to(device) for v in (x[rows, :steps], y[rows], t[rows])))
            self._batches[key] = batches
        return self._batches[key]

    @torch.inference_mode()
    def _measure(self, model, trained: int, iteration: int, device) -> list[tuple]:
        """``(iteration, trained, stream, tested, measure, value)`` of each tested experience."""
        records = []
        training = model.training
        model.eval()
        multi_task = is_multi_task_module(model)
        gathers = getattr(model, "gathers_steps", False)  # outputs at the target steps alone
        try:
            for name in self._streams:
                n = len(self.indices[name])
                tested = range(n) if self.seen_all else range(min(trained + 1, n))
                for j in tested:
                    sums = {m: 0.0 for m in self.kind.measures}
                    count = 0
                    for x, y, t in self._batch(name, j, device):
                        steps = {"steps": carried_steps(y)} if gathers else {}
                        out = model(x, t, **steps) if multi_task else model(x, **steps)
                        for measure in self.kind.measures:
                            total, counted = self.kind.score(out, y, measure)
                            sums[measure] += float(total)
                            if measure == self.kind.measures[0]:
                                count += int(counted)
                    for measure, total in sums.items():
                        value = total / max(count, 1)
                        records.append((iteration, trained, name, j, measure, value))
        finally:
            model.train(training)
        return records

    def _log(self, iteration: int, trained: int, stream: str, j: int, measure: str,
             value: float) -> None:  # fmt: skip
        if self._writer is None:
            return
        prefix = "" if stream == "test" else f"{stream}/"
        self._writer.add_scalar(f"{prefix}continual/{SHORT[measure]}/exp{j:02d}", value, iteration)

    def curves(self) -> dict:
        """``{stream: {measure: {"iteration", "trained", "tested", "value"}}}`` (lists)."""
        self.wait()
        out: dict = {}
        for iteration, trained, stream, tested, measure, value in self.records:
            c = out.setdefault(stream, {}).setdefault(
                measure, {"iteration": [], "trained": [], "tested": [], "value": []}
            )
            for key, v in zip(("iteration", "trained", "tested", "value"),
                              (iteration, trained, tested, value), strict=True):  # fmt: skip
                c[key].append(v)
        return out

    def boundaries(self) -> list[int]:
        """The iteration at the end of each training experience so far."""
        self.wait()
        ends, last = [], None
        for iteration, trained, *_ in self.records:
            if last is not None and trained != last[1]:
                ends.append(last[0])
            last = (iteration, trained)
        return ends + ([last[0]] if last is not None else [])
