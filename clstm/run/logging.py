"""Loggers of a run: concise console progress (an Avalanche logger) and TensorBoard views.

A run's TensorBoard events are written by Avalanche's ``TensorboardLogger`` (through
:class:`RunTensorboardLogger`, which opens its file lazily once unpickled) into the run
directory itself, so ``tensorboard --logdir <out>/<experiment>`` names each run
``<run name>/seed<k>``. The experiment folder gets its own small events file with the HParams
experiment config and a Custom Scalars layout (:func:`update_experiment_view`). The console
logger prints one line per training epoch and one per evaluation of the whole stream.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from avalanche.logging import BaseLogger, TensorboardLogger

from clstm.metrics import CONTINUAL_KEYS, MEASURES, metric
from clstm.plugins.continual import SHORT
from clstm.plugins.training_curves import EPOCH_ACCURACY, EPOCH_LOSS
from clstm.run.files import CURVES
from clstm.targets import KINDS


class RunTensorboardLogger(TensorboardLogger):
    """Avalanche's ``TensorboardLogger``, whose writer, once unpickled, opens when first used.

    Why: Avalanche 0.6's ``__setstate__`` opens a ``SummaryWriter`` at once, so merely loading
    a run's checkpoint (``torch.load``, e.g. to look at its weights) left an empty events file
    in the run directory. Unpickled, this logger keeps only the folder and file suffix; the
    writer (and its events file) is made when something is logged or ``writer`` is read, as
    when a run resumes.
    """

    def __setstate__(self, state) -> None:
        self.__dict__["_unopened"] = state  # (log_dir, filename_suffix), as Avalanche pickles

    def __getattr__(self, name: str):  # only for attributes not found the normal way
        unopened = self.__dict__.get("_unopened")
        if name != "writer" or unopened is None:
            raise AttributeError(name)
        writer = self.__dict__["writer"] = self._make_writer(*unopened)
        del self.__dict__["_unopened"]
        return writer

    def relocate(self, run_dir) -> None:
        """Write into ``run_dir`` from now on, wherever the run was when it was pickled.

        Why: a checkpoint records the run directory's path as it was then; a run folder moved
        (or copied to another machine) and resumed there would otherwise log into the old path,
        outside the output folder the user chose now. Only a logger whose writer is not open
        yet (unpickled) can move; an open one already writes into its run directory.
        """
        unopened = self.__dict__.get("_unopened")
        if unopened is not None:
            self.__dict__["_unopened"] = (str(run_dir), *tuple(unopened)[1:])

    def __getstate__(self):
        unopened = self.__dict__.get("_unopened")
        return unopened if unopened is not None else super().__getstate__()

    def _make_writer(self, tb_log_dir, filename_suffix):
        _leave_writer_thread_errors_to_the_writer()
        return super()._make_writer(tb_log_dir, filename_suffix)


def close_events(writer) -> None:
    """Flush and close a run's events file (its ``SummaryWriter``); once, even when that fails.

    Why: torch's ``SummaryWriter.close`` forgets its file writers only when closing succeeds,
    and Avalanche's ``TensorboardLogger`` closes the writer again at interpreter exit
    (``weakref.finalize``). When the events file cannot be written (disk full, the run folder
    removed), the first close raises, which clstm reports in one line, and the exit-time close
    raised the same error again, printed as a traceback after that line.
    """
    try:
        writer.close()
    finally:
        writer.file_writer = writer.all_writers = None


def _leave_writer_thread_errors_to_the_writer() -> None:
    """Do not print an events-file write error in TensorBoard's writer thread.

    Why: the writer thread stores a failed write (disk full, the run folder removed) and the
    writer's next call in the main thread (``add_*``, ``flush``, ``close``) raises it, where clstm
    reports it in one line; the thread also re-raises it to ``threading.excepthook``, which
    printed a traceback beside that line. Only that thread's ``OSError`` is left to the writer;
    every other exception goes to the hook found here, which this one wraps (again, if someone
    replaced it since).
    """
    previous = threading.excepthook
    if getattr(previous, "leaves_writer_errors", False):
        return
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    def hook(args) -> None:
        if isinstance(args.thread, _AsyncWriterThread) and isinstance(args.exc_value, OSError):
            return  # stored on the thread: the writer's next call raises it
        previous(args)

    hook.leaves_writer_errors = True
    threading.excepthook = hook


class ProgressLogger(BaseLogger):
    """Prints ``exp i/T (name)  epoch e/E  loss  acc  lr  time`` per epoch and each accuracy row."""

    def __init__(self, experience_names: Sequence[str], *, stream: TextIO | None = None):
        super().__init__()
        self.names = list(experience_names)
        self.stream = stream or sys.stdout
        self._lr = float("nan")
        self._started = 0.0

    def __getstate__(self) -> dict:  # checkpoints: a console stream cannot be pickled
        return {k: v for k, v in self.__dict__.items() if k != "stream"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.stream = sys.stdout

    def log_single_metric(self, name, value, x_plot) -> None:
        """Values are read in the hooks below; nothing is printed per value."""

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def before_training_epoch(self, strategy, metric_values, **kwargs) -> None:
        self._lr = strategy.optimizer.param_groups[0]["lr"]
        self._started = time.perf_counter()

    def after_training_epoch(self, strategy, metric_values, **kwargs) -> None:
        values = {m.name: m.value for m in metric_values}
        loss = values.get(EPOCH_LOSS, float("nan"))
        acc = values.get(EPOCH_ACCURACY)
        i = strategy.clock.train_exp_counter
        name = self.names[i] if i < len(self.names) else f"exp{i}"
        self._print(
            f"  exp {i + 1}/{len(self.names)} ({name})  epoch "
            f"{strategy.clock.train_exp_epochs + 1}/{strategy.train_epochs}  loss {loss:.4f}  "
            + (f"acc {acc:.3f}  " if acc is not None else "")
            + f"lr {self._lr:.2e}  {time.perf_counter() - self._started:.1f}s"
        )

    def after_eval(self, strategy, metric_values, **kwargs) -> None:
        values = {m.name: m.value for m in metric_values}
        # the first measure whose per-experience scalars are there: accuracy, else MSE
        measure = next(
            (m for m in MEASURES.values() if any(k.startswith(m.scalar_prefix) for k in values)),
            None,
        )
        if measure is None:  # not a row of a matrix (e.g. periodic evaluation)
            return
        row = [values[k] for k in sorted(values) if k.startswith(measure.scalar_prefix)]
        k = strategy.clock.train_exp_counter
        label = "before training" if k == 0 else f"after {self.names[k - 1]}"
        text = " ".join(f"{a:.3f}" for a in row)
        final = metric(measure.final)
        value = values.get(final.tag)
        suffix = f"  {final.label} {value:.3f}" if value is not None else ""
        self._print(f"  eval {label}: {measure.label} [{text}]{suffix}")


# ---------------------------------------------------------------------------------------------
# TensorBoard views of an experiment folder: HParams and custom scalars across its runs
# ---------------------------------------------------------------------------------------------

#: hparams always marked as differing, besides those whose values differ between runs.
#: TensorBoard's HParams table sorts the differing ones first (by name) and shows the first five
#: by default: the strategy, the benchmark's variant or datasets, and the swept keys and seed.
KEY_HPARAMS = ("strategy", "benchmark.variant", "benchmark.datasets")
#: the category of clstm's charts in TensorBoard's Custom Scalars (each kind's, in its own)
CHART_CATEGORY = "clstm: every run"
_SUFFIX = ".clstm-experiment"


def run_hparams(config_dict: dict) -> dict:
    """The flat hyperparameters of a run for TensorBoard's HParams: every config value that
    describes the experiment (strategy, benchmark and its variant or datasets, scenario, seed,
    the strategy's, training and model options); lists become text."""
    from clstm.run.rundir import flatten

    values = {
        "strategy": config_dict["strategy"]["name"],
        "scenario": config_dict["benchmark"].get("scenario"),
        "seed": config_dict["seed"],
    }
    for section in ("benchmark", "strategy", "train", "model"):
        values |= {
            f"{section}.{k}": v
            for k, v in flatten(config_dict[section]).items()
            if f"{section}.{k}" not in ("strategy.name", "benchmark.scenario")
        }
    return {
        k: v if isinstance(v, (bool, int, float, str)) else str(v)
        for k, v in values.items()
        if v is not None
    }


def hparam_tags(kind, continual: bool = False) -> list[str]:
    """The final scalars (TensorBoard tags) shown against the hyperparameters of a kind's runs:
    those of its default report columns (:data:`clstm.metrics.CATALOGUE`), and with
    ``continual`` the continual evaluation's summaries."""
    keys = list(kind.default_columns)
    if continual:
        keys += CONTINUAL_KEYS["accuracy" if kind.accuracy else "errors"]
    return [metric(key).tag for key in keys]


def write_final_hparams(writer, cfg, bench, matrices: dict, extra: dict | None = None) -> None:
    """TensorBoard HParams of a completed run, in the run's own TensorBoard run.

    Hyperparameters: :func:`run_hparams` (strategy, benchmark and its variant or datasets,
    scenario, seed, the strategy's, training and model options); metrics: the final values of
    :func:`hparam_tags`, already logged as scalars (the HParams dashboard reads their last
    values). ``matrices``: the test stream's matrix metric per measure; nothing is written when
    none was measured or the test stream was not evaluated (``eval.test: false``). ``extra``: more
    tags and final values (the continual evaluation's summaries, logged as scalars already).
    """
    from clstm.config import to_dict
    from clstm.run.outcome import full_result

    if not matrices or not all(m.measured for m in matrices.values()):
        return  # nothing measured, or a tune's trial (no test stream)
    kind = bench.kind
    results = {name: full_result(m, bench.n_experiences) for name, m in matrices.items()}
    scores = kind.record(results, completed=True)
    final = {metric(k).tag: scores.get(k) for k in kind.default_columns} | (extra or {})
    write_run_hparams(writer, run_hparams(to_dict(cfg)),
                      {k: v for k, v in final.items() if v is not None})  # fmt: skip


def write_run_hparams(writer, hparams: dict, metrics: dict) -> None:
    """One run's HParams session (its values and, as metrics, its final cl/* scalars).

    The experiment's list of hparams is written once per experiment folder
    (:func:`update_experiment_view`), not per run, so that TensorBoard's table shows the keys
    that matter first instead of whichever run it happens to read first.
    """
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    _, start, end = hparams_summaries(hparams, metrics)
    for item in (start, end):
        writer.file_writer.add_summary(item)


def update_experiment_view(experiment_dir: Path) -> None:
    """(Re)write the experiment folder's own TensorBoard file: HParams config and layout.

    Reads every run's ``meta.json`` (its ``hparams``) below ``experiment_dir``; hparams whose
    values differ between runs, and the key ones (:data:`KEY_HPARAMS`), are marked as differing,
    which TensorBoard lists first. Runs writing at the same time take turns (a lock file).
    """
    import fcntl
    import json
    import os

    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from torch.utils.tensorboard import SummaryWriter

    experiment_dir = Path(experiment_dir)
    values: dict[str, list] = {}
    targets = set()
    continual = any(experiment_dir.glob(f"*/seed*/{CURVES}"))  # runs with eval.every
    for meta_path in sorted(experiment_dir.glob("*/seed*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        hp = meta.get("hparams") or {}
        targets.add((meta.get("benchmark") or {}).get("target", "sequence"))  # kinds present
        for k, v in hp.items():
            values.setdefault(k, []).append(v)
    if not values:
        return
    kinds = {bool: "DATA_TYPE_BOOL", str: "DATA_TYPE_STRING"}
    infos = []
    for name in sorted(values):
        seen = values[name]
        kind = kinds.get(type(seen[0]), "DATA_TYPE_FLOAT64")
        differs = name in KEY_HPARAMS or len({json.dumps(v) for v in seen}) > 1
        infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind),
                                        differs=differs))  # fmt: skip
    kinds = [kind for name, kind in KINDS.items() if name in targets]  # unknown ones: none
    tags = list(dict.fromkeys(tag for kind in kinds for tag in hparam_tags(kind, continual)))
    charts = {title: chart for kind in kinds for title, chart in kind.charts.items()}
    if continual:
        for short in dict.fromkeys(SHORT[kind.measures[0]] for kind in kinds):
            title = f"continual evaluation: {short} of every experience (the stability gap)"
            charts[title] = ["Multiline", [rf"^continual/{short}/exp\d+$"]]
    layout = {CHART_CATEGORY: charts}
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in tags],
    )
    content = plugin_data_pb2.HParamsPluginData(
        experiment=experiment, version=metadata.PLUGIN_DATA_VERSION
    )
    summary = Summary(value=[Summary.Value(
        tag=metadata.EXPERIMENT_TAG,
        metadata=SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString())),
    )])  # fmt: skip
    lock = os.open(experiment_dir / ".tensorboard.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for old in experiment_dir.glob(f"events.out.tfevents.*{_SUFFIX}"):
            old.unlink(missing_ok=True)
        writer = SummaryWriter(log_dir=str(experiment_dir), filename_suffix=_SUFFIX)
        writer.file_writer.add_summary(summary)
        writer.add_custom_scalars(layout)
        writer.close()
    finally:
        os.close(lock)
