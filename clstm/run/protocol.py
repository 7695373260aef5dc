"""The continual-learning protocol of one run, on Avalanche's strategy::

    eval(test stream)                      -> initial row b
    for each training experience i:
        train(experience i)                -> LSTMPlugin resets state, LR, optimizer state
        eval(test stream)                  -> row R[i] of the accuracy matrix

with a checkpoint after every experience and the timings added to the run's ``meta`` as it goes
(saved by the caller). :mod:`clstm.run.runner` owns the run directory around it (identity, lock,
provenance, the files it writes).
"""

from __future__ import annotations

import random
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from clstm.errors import OutputError, interruption_cause
from clstm.run.files import CHECKPOINT


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) random number generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def interruption(exc: BaseException) -> str:
    """``interrupted by Ctrl-C`` or ``interrupted by SIGTERM`` (see :class:`Interrupted`)."""
    return f"interrupted by {interruption_cause(exc)}"


@dataclass
class Trained:
    """How the loop ended, and what it measured."""

    status: str = "completed"  # or diverged, interrupted, failed
    error: str | None = None
    failure: tuple[BaseException, str] | None = None  # the exception and its traceback
    timings: list[dict] = field(default_factory=list)  # per experience: train and eval seconds
    #: stream (``test``, ``valid``) -> measure (``accuracy``, ``mse``, ...) -> matrix metric
    matrices: dict[str, dict] = field(default_factory=dict)
    #: continual evaluation (``eval.every``): the plugin holding the curves, or None
    continual: object | None = None
    #: an online stream (``online.batch``): the plugin holding the prequential scores, or None
    online: object | None = None


def train_and_evaluate(
    cfg, bench, device, run_dir, *, quiet, plugins, resuming, meta, elapsed,
    save_meta: Callable[[], None],
) -> Trained:  # fmt: skip
    """The protocol loop; returns how it ended and the matrix metrics (:class:`Trained`).

    With ``resuming`` the strategy (model, optimizer, plugin states, metrics so far, RNG states)
    is restored from the run's checkpoint and the loop continues after its last experience.
    ``elapsed()`` is the run's wall time so far (over every process of a resumed run), put in
    ``meta`` with each experience's progress, after which ``save_meta()`` is called.
    """
    from clstm.plugins import RunDiverged
    from clstm.run.checkpoint import save_strategy
    from clstm.run.logging import close_events, write_final_hparams
    from clstm.strategies import STRATEGIES

    strategy, matrices, tensorboard, done = _strategy(
        cfg, bench, device, run_dir, quiet, plugins, resuming
    )
    if resuming:
        _progress_from_checkpoint(strategy, done, meta, elapsed)
    result = Trained(timings=list(meta.get("timings", [])), matrices=matrices)
    result.continual = _continual(strategy, bench, matrices, tensorboard)
    result.online = _online(strategy, tensorboard)
    # eval.test: false (a tune's trials): the test stream is never evaluated, nor read
    streams = [getattr(bench.scenario, f"{name}_stream") for name in matrices]
    entry = STRATEGIES[cfg.strategy.name]
    try:
        if cfg.eval.initial and not resuming:
            t0 = time.perf_counter()
            for stream in streams:
                strategy.eval(stream)
            meta["initial_eval_s"] = round(time.perf_counter() - t0, 3)
        once = entry.trains_once  # joint: one call on the whole stream
        chunks = [bench.scenario.train_stream] if once else list(bench.scenario.train_stream)
        for chunk in chunks if once else chunks[done:]:
            t0 = time.perf_counter()
            strategy.train(chunk)
            t1 = time.perf_counter()
            for stream in streams:
                strategy.eval(stream)
            t2 = time.perf_counter()
            name = "all" if once else bench.experience_names[chunk.current_experience]
            result.timings.append(
                {"experience": name, "train_s": round(t1 - t0, 3), "eval_s": round(t2 - t1, 3)}
            )
            meta["timings"] = result.timings  # progress on disk, for a run that gets killed
            meta["elapsed_s"] = round(elapsed(), 3)  # and the wall time up to it
            if cfg.checkpoint != "off" and not once and entry.checkpointable:
                # The same progress inside the checkpoint: a kill between the two writes must
                # not leave the resumed run's timings (and experiences trained) one behind.
                strategy.clstm_progress = {
                    "timings": list(result.timings), "elapsed_s": meta["elapsed_s"],
                    "initial_eval_s": meta.get("initial_eval_s"),
                }  # fmt: skip
                save_strategy(strategy, run_dir / CHECKPOINT)
            save_meta()
        extra = _continual_summaries(result.continual, cfg, bench, tensorboard.writer)
        extra |= _online_summaries(result.online, bench, tensorboard.writer)
        write_final_hparams(tensorboard.writer, cfg, bench, matrices.get("test"), extra)
    except RunDiverged as exc:
        result.status, result.error = "diverged", str(exc)
    except KeyboardInterrupt as exc:  # record what was measured, then let the caller re-raise
        result.status, result.error = "interrupted", interruption(exc)
        result.failure = (exc, traceback.format_exc())
    except Exception as exc:  # recorded in the run directory, then re-raised by the caller
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        result.failure = (exc, traceback.format_exc())
    finally:
        close_events(tensorboard.writer)
    return result


def _settle_device(device) -> None:
    import torch

    if device.type == "cpu":
        # Vanishing gradients through long sequences become denormal floats, which are ~6x slower.
        torch.set_flush_denormal(True)
    else:  # CUDA: deterministic cuDNN kernels, no autotuning (docs/runs.md, Determinism)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _strategy(cfg, bench, device, run_dir, quiet, plugins, resuming):
    """``(strategy, matrices, TensorBoard logger, experiences done)``: the strategy of the run,
    built, or when ``resuming`` restored from its checkpoint (``matrices`` then are the restored
    metrics, which hold the rows measured so far)."""
    from clstm.models import build_model
    from clstm.plugins.error_matrix import matrix_metric
    from clstm.plugins.evaluation import LeanEvaluationPlugin
    from clstm.plugins.training_curves import TrainingCurvesMetric
    from clstm.run.logging import ProgressLogger, RunTensorboardLogger
    from clstm.strategies import build_strategy

    _settle_device(device)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, benchmark=bench, stateful=cfg.train.state == "stateful")
    kind = bench.kind
    streams = ({"test": ""} if cfg.eval.test else {}) | (
        {"valid": "valid/"} if bench.has_validation else {}
    )
    matrices = {
        stream: {m: matrix_metric(m, stream=stream, prefix=prefix) for m in kind.measures}
        for stream, prefix in streams.items()
    }
    # Resuming, the strategy built here is replaced by the checkpoint's, loggers included: a
    # TensorBoard logger made now would only leave an empty events file in the run directory.
    tensorboard = None if resuming else RunTensorboardLogger(run_dir)  # "<run name>/seed<k>"
    if cfg.eval.every and not resuming:  # continual evaluation; resuming, the checkpoint's
        from clstm.plugins.continual import ContinualEvalPlugin
        from clstm.strategies import STRATEGIES

        plugins = [*plugins, ContinualEvalPlugin(
            {name: getattr(bench.scenario, f"{name}_stream") for name in streams},
            every=cfg.eval.every, subsample=cfg.eval.subsample, seed=cfg.seed, kind=kind,
            batch_size=cfg.eval.batch_size, writer=None, background=cfg.eval.background,
            seen_all=STRATEGIES[cfg.strategy.name].trains_once,
        )]  # fmt: skip
    if cfg.online.batch and not resuming:  # an online stream; resuming, the checkpoint's
        from clstm.plugins.online import OnlinePlugin

        plugins = [*plugins, OnlinePlugin(batch=cfg.online.batch, kind=kind, seed=cfg.seed,
                                          arrival_times=bench.arrival_times)]  # fmt: skip
    loggers = [tensorboard] if tensorboard is not None else []
    if not quiet:
        loggers.append(ProgressLogger(bench.experience_names))
    with warnings.catch_warnings():  # "No loggers specified" (resuming quietly): they come back
        warnings.filterwarnings("ignore", "No loggers specified")
        evaluator = LeanEvaluationPlugin(
            TrainingCurvesMetric(),
            *(metric for by_measure in matrices.values() for metric in by_measure.values()),
            loggers=loggers,
            # clstm reads the metrics' own results; keeping every value emitted (heatmap images
            # included) only grew memory and every checkpoint (~0.5 MB after three experiences)
            collect_all=False,
        )
    strategy = build_strategy(
        cfg, model=model, device=device, evaluator=evaluator, plugins=plugins,
        windows_per_series=bench.windows_per_series, target=kind,
    )  # fmt: skip
    if not resuming:
        return strategy, matrices, tensorboard, 0
    strategy, done = _restore(strategy, run_dir, device)
    matrices = {}
    for metric in strategy.evaluator.metrics:  # the restored metrics hold the rows so far
        if hasattr(metric, "measure"):  # the matrices (accuracy, or errors)
            matrices.setdefault(metric.stream, {})[metric.measure] = metric
    tensorboard = next(lg for lg in strategy.evaluator.loggers if hasattr(lg, "relocate"))
    tensorboard.relocate(run_dir)  # the run folder may have moved since the checkpoint
    return strategy, matrices, tensorboard, done


def _continual(strategy, bench, matrices, tensorboard):
    """The run's continual-evaluation plugin (built, or restored from the checkpoint), given the
    streams and the TensorBoard writer it logs to; None when ``eval.every`` is 0."""
    from clstm.plugins.continual import ContinualEvalPlugin

    plugin = next((p for p in strategy.plugins if isinstance(p, ContinualEvalPlugin)), None)
    if plugin is not None:
        streams = {name: getattr(bench.scenario, f"{name}_stream") for name in matrices}
        plugin.attach(streams, tensorboard.writer)
    return plugin


def _online(strategy, tensorboard):
    """The run's online plugin (built, or restored from the checkpoint), given the TensorBoard
    writer it logs to; None offline."""
    from clstm.plugins.online import OnlinePlugin

    plugin = next((p for p in strategy.plugins if isinstance(p, OnlinePlugin)), None)
    if plugin is not None:
        plugin.attach(tensorboard.writer)
    return plugin


def _online_summaries(plugin, bench, writer) -> dict:
    """The prequential scores over the whole stream, logged as scalars at the last step:
    ``{tag: value}`` for the run's HParams (empty offline)."""
    from clstm.metrics import metric
    from clstm.plugins.online import SHORT

    if plugin is None:
        return {}
    extra = {}
    for measure, values in plugin.summary(bench.experience_names).items():
        if values["overall"] is not None:
            tag = metric(f"preq_{SHORT[measure]}").tag
            extra[tag] = values["overall"]
            writer.add_scalar(tag, values["overall"], plugin.seen)
    return extra


def _continual_summaries(plugin, cfg, bench, writer) -> dict:
    """The test stream's continual summaries, logged as scalars at the last iteration:
    ``{tag: value}`` for the run's HParams (empty without continual evaluation)."""
    from clstm.metrics import CONTINUAL_KEYS, MEASURES, continual_record, metric

    curves = plugin.curves().get("test") if plugin is not None else None
    if not curves:
        return {}
    measure = bench.kind.measures[0]
    higher = MEASURES[measure].higher_is_better
    record = continual_record(curves[measure], plugin.boundaries(), cfg.eval.wf_window,
                              cfg.eval.tolerance, higher)  # fmt: skip
    extra = {}
    for key in CONTINUAL_KEYS["accuracy" if higher else "errors"]:
        if record[key] is not None:
            extra[metric(key).tag] = record[key]
            writer.add_scalar(metric(key).tag, record[key], plugin.iteration)
    return extra


def _restore(strategy, run_dir, device):
    """``(strategy, experiences done)`` from the run's checkpoint; OutputError if unreadable."""
    from clstm.run.checkpoint import load_strategy

    try:
        return load_strategy(strategy, run_dir / CHECKPOINT, device)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign checkpoint file
        raise OutputError(
            f"cannot load {run_dir / CHECKPOINT} ({type(exc).__name__}: {exc}); remove it "
            "to restart this run, or pass overwrite=True",
            cli=f"cannot load {run_dir / CHECKPOINT} ({type(exc).__name__}: {exc}); remove it "
            "to restart this run with --resume, or pass --overwrite",
        ) from None


def _progress_from_checkpoint(strategy, done: int, meta: dict, elapsed) -> None:
    """A resumed run's progress so far comes from its checkpoint, which ``meta.json`` may lag.

    Each experience's checkpoint is written just before ``meta.json``: a run killed between the
    two resumes after that experience, while ``meta.json`` still lists the timings and wall time
    up to the one before. The checkpoint carries the same progress (``clstm_progress``), which
    replaces ``meta.json``'s; ``elapsed`` (the run's clock) then counts the earlier processes'
    time from it. Checkpoints written before clstm recorded it keep ``meta.json``'s timings, cut
    to the experiences the checkpoint holds.
    """
    progress = strategy.__dict__.pop("clstm_progress", None)
    if progress is None:
        meta["timings"] = list(meta.get("timings", []))[:done]
        return
    meta["timings"] = list(progress["timings"])
    meta["elapsed_s"] = progress["elapsed_s"]
    if progress.get("initial_eval_s") is not None:
        meta["initial_eval_s"] = progress["initial_eval_s"]
    elapsed.earlier = float(progress["elapsed_s"])
    if meta.get("resumed"):  # the resuming process's record, written before the checkpoint loaded
        meta["resumed"][-1]["earlier_wall_time_s"] = round(elapsed.earlier, 3)
