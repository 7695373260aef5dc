"""Online streams (``online.batch``, docs/online.md): every training experience arrives once, in
batches of ``B`` sequences, and each incoming batch is evaluated before it is trained on
(prequential, "test-then-train", as in online learning: Gama et al. 2013; CapyMOA).

:class:`OnlinePlugin` replaces the training loader of every experience by the experience's
sequences in one fixed order, cut into batches of ``B`` (:func:`schedule`), and records what the
model predicts for each incoming batch before that batch updates it. The strategy still trains on
one Avalanche experience per dataset: it is told where the experience changes with
``online.boundaries: known`` and not with ``hidden`` (the rules each strategy follows are in
:mod:`clstm.run.checks` and docs/online.md). Avalanche's own online scenario
(``split_online_stream``, one ``train`` call per mini-experience) gives the same batches at about
3x the time of training on them (measured: docs/online.md), which is why this loop is clstm's own.

**Order.** Sequences of an i.i.d. dataset arrive in one order drawn per experience from the run's
seed (its own generator: no global RNG is drawn). Windows of a forecasting series arrive in time
order, and each is trained on only once its whole horizon has been observed: a window whose last
target is at time ``s`` waits until a window that ends at ``s`` or later has arrived (the delay
equals the horizon). Without that delay the model would be trained on values that, at the next
prediction, still lie in the future (a leak ``tests/test_online.py`` demonstrates).

**Prequential scores, exactly and for free.** When the training batch is the incoming batch (no
delay) and the model has no dropout or batch statistics, the model's training forward pass on the
batch *is* its prediction before the update: the scores are taken from it (its last ``n`` rows:
replay and DER put their memory rows first). Otherwise (a delay, dropout) the incoming batch is
evaluated by a forward pass of its own, in eval mode, before the training step. Scores are summed
on the device and read once per experience.
"""

from __future__ import annotations

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.models.utils import is_multi_task_module
from torch import nn

from clstm.data.batches import SampledBatches, stacked
from clstm.data.sequences import pad_item

#: the name of each measure in TensorBoard tags and prequential.csv
SHORT = {"accuracy": "acc", "mse": "mse", "mae": "mae"}
#: TensorBoard's prequential curve: the mean over the last this many incoming sequences
TB_WINDOW = 1000


def arrival_order(n: int, seed: int, experience: int) -> np.ndarray:
    """The order in which an i.i.d. experience's ``n`` sequences arrive: a permutation drawn
    from the run's seed and the experience index alone."""
    return np.random.default_rng([seed, 0x0A11, experience]).permutation(n)


def schedule(
    order: np.ndarray, batch: int, arrival=None, observed=None, *, delay: bool = True
) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """The steps of one experience: ``(incoming rows, [rows trained on, in batches])``.

    ``order`` is the order of arrival. Without times every incoming batch is trained on as it
    arrives. With ``arrival`` (the time of each row's last input) and ``observed`` (the time of
    its last target), a row is trained on at the first step whose latest arrival reaches its
    ``observed`` time, in batches of at most ``batch``; rows still waiting after the last arrival
    are trained on at the end (the series' remaining values arrive then). ``delay=False`` trains
    every incoming batch at once, which with times uses targets from the future: kept only to
    show that leak in the tests.
    """
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    if arrival is None or not delay:
        return [(rows, [rows]) for rows in batches]
    arrival, observed = np.asarray(arrival), np.asarray(observed)
    steps, waiting = [], np.empty(0, dtype=np.int64)
    for rows in batches:
        now = arrival[rows].max()
        waiting = np.concatenate([waiting, rows])
        ready = observed[waiting] <= now
        steps.append((rows, _chunks(waiting[ready], batch)))
        waiting = waiting[~ready]
    if len(waiting):
        steps.append((np.empty(0, dtype=np.int64), _chunks(waiting, batch)))
    return steps


def _chunks(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def stochastic(model: nn.Module) -> bool:
    """Whether ``model``'s training forward differs from its eval forward (dropout, batch norm)."""
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return True
        if isinstance(m, nn.RNNBase) and m.dropout > 0 and m.num_layers > 1:
            return True
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return True
    return False


class OnlineBatches(SampledBatches):
    """The training loader of one online experience: the schedule's training batches, with the
    plugin told of each incoming batch before the batches trained after its arrival."""

    def __init__(self, batches, steps, plugin, strategy):
        super().__init__(batches, [train for _, trains in steps for train in trains])
        self.steps, self.plugin, self.strategy = steps, plugin, strategy

    def __iter__(self):
        torch.empty((), dtype=torch.int64).random_()  # as SampledBatches (a DataLoader) draws
        for incoming, trains in self.steps:
            self.plugin.arrived(self.strategy, self.dataset, incoming, shared=len(trains) == 1
                                and trains[0] is incoming)  # fmt: skip
            for rows in trains:
                yield self.dataset[torch.as_tensor(rows)]

    def __len__(self) -> int:
        return sum(len(trains) for _, trains in self.steps)


class OnlinePlugin(SupervisedPlugin):
    """Train every experience online and record the prequential scores (module docstring)."""

    def __init__(self, *, batch: int, kind, seed: int, arrival_times=None, writer=None):
        super().__init__()
        self.batch, self.kind, self.seed = batch, kind, seed
        self.arrival_times = arrival_times  # per training experience: (arrival, observed) or None
        self.step = 0  # incoming batches over the whole run
        self.seen = 0  # incoming sequences over the whole run
        #: (step, experience, sequences seen, measure, sum, count), one per batch and measure
        self.records: list[tuple] = []
        self._pending: list[tuple] = []  # this experience's (step, e, seen, {measure: (sum, n)})
        self._shared = 0  # incoming rows to score from the next training forward pass
        self._window: list[tuple[float, int]] = []  # the TensorBoard curve's last batches
        self.attach(writer)

    def attach(self, writer=None) -> None:
        """The TensorBoard writer to log to; again after a checkpoint loads."""
        self._writer = writer

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_writer", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._writer = None

    # -- the loader ---------------------------------------------------------------------------

    def before_training_exp(self, strategy, **kwargs):
        """Runs once Avalanche (and every earlier plugin) has made the loader: replaces it."""
        e = int(strategy.experience.current_experience)
        batches = stacked(strategy.adapted_dataset, 2**62)  # the experience's samples, once
        if batches is None:
            raise RuntimeError(
                "online.batch: this experience's samples cannot be stacked into tensors (a "
                "dataset with transforms); online streams need clstm's padded sequence datasets"
            )
        n = len(batches)
        times = self.arrival_times[e] if self.arrival_times else None
        if times is None:
            order = arrival_order(n, self.seed, e)
            steps = schedule(order, self.batch)
        else:
            arrival, observed = times
            order = np.argsort(arrival, kind="stable")
            steps = schedule(order, self.batch, arrival, observed)
        self._exact = times is None and not stochastic(strategy.model)
        self._experience = e
        strategy.dataloader = OnlineBatches(batches, steps, self, strategy)

    # -- prequential scores -------------------------------------------------------------------

    def arrived(self, strategy, batches, incoming: np.ndarray, shared: bool) -> None:
        """An incoming batch, before any training on it: scored now by a forward pass of its
        own, or from the training forward that follows (``shared`` and an exact model)."""
        if len(incoming) == 0:
            return
        self.step += 1
        self.seen += len(incoming)
        if shared and self._exact:
            self._shared = len(incoming)
            return
        batch = batches[torch.as_tensor(incoming)]
        model = strategy.model
        training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                x, y = (t.to(strategy.device) for t in batch[:2])
                if is_multi_task_module(model):
                    out = model(x, batch[2].to(strategy.device))
                else:
                    out = model(x)
                self._score(out, y)
        finally:
            model.train(training)

    def after_training_iteration(self, strategy, **kwargs):
        """Scores the incoming rows (the batch's last ones) of the forward pass just trained on,
        computed before the update."""
        if self._shared:
            n, self._shared = self._shared, 0
            with torch.no_grad():
                self._score(strategy.mb_output[-n:].detach(), strategy.mb_y[-n:])

    def _score(self, out, y) -> None:
        scores = {m: self.kind.score(out, y, m) for m in self.kind.measures}
        self._pending.append((self.step, self._experience, self.seen, scores))

    def after_training_exp(self, strategy, **kwargs):
        """Reads the experience's scores (one host sync) into :attr:`records`; logs them."""
        first = self.kind.measures[0]
        for step, e, seen, scores in self._pending:
            for measure, (total, count) in scores.items():
                total, count = float(total), int(count)
                self.records.append((step, e, seen, measure, total, count))
                if measure == first:
                    self._window.append((total, count))
            while sum(c for _, c in self._window) - self._window[0][1] >= TB_WINDOW:
                self._window.pop(0)  # the mean over the last TB_WINDOW sequences
            if self._writer is not None:
                total = sum(t for t, _ in self._window)
                count = sum(c for _, c in self._window)
                self._writer.add_scalar(f"online/preq_{SHORT[first]}", total / max(count, 1), seen)
        self._pending = []

    # -- what the run records -----------------------------------------------------------------

    def summary(self, names: list[str]) -> dict:
        """``{measure: {"overall", "per_experience"}}``: each measure's sum over the stream's
        incoming batches over their count (overall and per experience)."""
        out: dict = {}
        for measure in self.kind.measures:
            rows = [r for r in self.records if r[3] == measure]
            per = []
            for e in range(len(names)):
                mine = [r for r in rows if r[1] == e]
                count = sum(r[5] for r in mine)
                per.append(sum(r[4] for r in mine) / count if count else None)
            count = sum(r[5] for r in rows)
            out[measure] = {
                "overall": sum(r[4] for r in rows) / count if count else None,
                "per_experience": per,
            }
        return out


class OnlineReplayPlugin(SupervisedPlugin):
    """Experience replay online (ER, Chaudhry et al. 2019, "On tiny episodic memories in
    continual learning"): every training batch gets ``batch_size_mem`` sequences drawn uniformly
    from a memory of ``mem_size``, and after the step the incoming sequences enter the memory by
    reservoir sampling (every sequence seen so far is kept with equal probability; Vitter's
    algorithm R). Nothing happens at experience boundaries, so it runs with hidden boundaries.

    The memory is tensors (no per-sample objects), padded to the longest sequence and the most
    features stored; its draws use a generator of its own (from the run's seed), pickled with it.
    """

    def __init__(self, *, mem_size: int, batch_size_mem: int | None, seed: int):
        super().__init__()
        self.mem_size, self.batch_size_mem = mem_size, batch_size_mem
        self.rng = np.random.default_rng([seed, 0x8E91A])
        self.seen = 0
        self.memory: list[torch.Tensor] | None = None  # x, y, task label: mem_size rows each
        self.filled = 0
        self._incoming: list[torch.Tensor] | None = None

    def before_training_iteration(self, strategy, **kwargs):
        """Puts a memory batch before the incoming one (drawn before it enters the memory)."""
        batch = list(strategy.mbatch)
        self._incoming = [t.detach() for t in batch[:3]]
        if self.filled == 0:
            return
        size = min(self.batch_size_mem or len(batch[0]), self.filled)
        drawn = torch.as_tensor(self.rng.choice(self.filled, size, replace=False))
        memory = [t[drawn.to(t.device)] for t in self.memory]
        steps = max(memory[0].shape[1], batch[0].shape[1])
        channels = max(memory[0].shape[2], batch[0].shape[2]) - 1
        x = torch.cat([pad_item(memory[0], steps, channels), pad_item(batch[0], steps, channels)])
        ys = [memory[1], batch[1]]
        if ys[0].dim() == 2 and ys[0].shape[1] != ys[1].shape[1] and not ys[1].is_floating_point():
            from clstm.targets import NO_TARGET  # per-step targets of streams of mixed lengths

            width = max(y.shape[1] for y in ys)
            ys = [nn.functional.pad(y, (0, width - y.shape[1]), value=NO_TARGET) for y in ys]
        strategy.mbatch = [x, torch.cat(ys), torch.cat([memory[2], batch[2]]), *batch[3:]]

    def after_training_iteration(self, strategy, **kwargs):
        """The incoming sequences enter the memory by reservoir sampling."""
        x, y, t = self._incoming
        self._incoming = None
        slots, rows, filled = [], [], self.filled
        for i in range(len(x)):
            self.seen += 1
            if filled < self.mem_size:  # room left: kept
                slot, filled = filled, filled + 1
            else:  # kept with probability mem_size / seen, in place of a random one
                slot = int(self.rng.integers(0, self.seen))
                if slot >= self.mem_size:
                    continue
            slots.append(slot)
            rows.append(i)
        if not rows:
            return
        new = filled
        self._grow(x, y, t)
        at = torch.as_tensor(slots, device=x.device)
        picked = torch.as_tensor(rows, device=x.device)
        steps, channels = self.memory[0].shape[1], self.memory[0].shape[2] - 1
        self.memory[0][at] = pad_item(x[picked], steps, channels)
        self.memory[1][at] = self._fit_targets(y[picked])
        self.memory[2][at] = t[picked]
        self.filled = new

    def _grow(self, x, y, t) -> None:
        """Memory tensors large enough for ``x``'s shape (padded up when a longer or wider
        experience arrives)."""
        if self.memory is None:
            self.memory = [
                x.new_zeros((self.mem_size, *x.shape[1:])),
                y.new_zeros((self.mem_size, *y.shape[1:])),
                t.new_zeros((self.mem_size, *t.shape[1:])),
            ]
            return
        mx, my = self.memory[0], self.memory[1]
        steps, channels = max(mx.shape[1], x.shape[1]), max(mx.shape[2], x.shape[2]) - 1
        if (steps, channels + 1) != tuple(mx.shape[1:]):
            self.memory[0] = pad_item(mx, steps, channels)
        if my.dim() == 2 and y.dim() == 2 and y.shape[1] > my.shape[1]:
            from clstm.targets import NO_TARGET

            self.memory[1] = nn.functional.pad(my, (0, y.shape[1] - my.shape[1]), value=NO_TARGET)

    def _fit_targets(self, y):
        width = self.memory[1].shape[1] if self.memory[1].dim() == 2 else None
        if width is not None and y.shape[1] < width:
            from clstm.targets import NO_TARGET

            return nn.functional.pad(y, (0, width - y.shape[1]), value=NO_TARGET)
        return y
