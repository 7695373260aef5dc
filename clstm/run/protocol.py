"""The continual-learning protocol of one run, on Avalanche's strategy::

    eval(test stream)                      -> initial row b
    for each training experience i:
        train(experience i)                -> LSTMPlugin resets state, LR, optimizer state
        eval(test stream)                  -> row R[i] of the accuracy matrix

with a checkpoint after every experience and the timings written to ``meta.json`` as it goes.
:mod:`clstm.run.runner` owns the run directory around it (identity, lock, provenance, summaries).
"""

from __future__ import annotations

import random
import time
import traceback
import warnings

import numpy as np

from clstm.errors import OutputError, interruption_cause
from clstm.run import outcome
from clstm.run.io import write_json_atomic

CHECKPOINT = "checkpoint.pt"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) random number generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def interruption(exc: BaseException) -> str:
    """``interrupted by Ctrl-C`` or ``interrupted by SIGTERM`` (see :class:`Interrupted`)."""
    return f"interrupted by {interruption_cause(exc)}"


def train_and_evaluate(cfg, bench, device, run_dir, quiet, plugins, resuming, meta, elapsed):
    """The protocol loop. Returns status, error, (exception, traceback) or None, timings, metrics.

    With ``resuming`` the strategy (model, optimizer, plugin states, metrics so far, RNG states)
    is restored from the run's checkpoint and the loop continues after its last experience.
    ``elapsed()`` is the run's wall time so far (over every process of a resumed run), written
    to ``meta.json`` with each experience's progress.
    """
    import torch

    from clstm.models import build_model
    from clstm.plugins import AccuracyMatrixMetric, RunDiverged
    from clstm.plugins.evaluation import LeanEvaluationPlugin
    from clstm.plugins.training_curves import TrainingCurvesMetric
    from clstm.run.checkpoint import load_strategy, save_strategy
    from clstm.run.logging import ProgressLogger, RunTensorboardLogger, close_events
    from clstm.strategies import STRATEGIES, build_strategy

    if device.type == "cpu":
        # Vanishing gradients through long sequences become denormal floats, which are ~6x slower.
        torch.set_flush_denormal(True)
    else:  # CUDA: deterministic cuDNN kernels, no autotuning (see README, Determinism)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    seed_everything(cfg.seed)
    model = build_model(cfg.model, benchmark=bench, stateful=cfg.train.state == "stateful")
    if bench.target == "regression":  # errors, lower is better (no accuracy)
        from clstm.plugins.error_matrix import ErrorMatrixMetric

        matrices = {
            "test": ErrorMatrixMetric("mse", stream="test"),
            "test_mae": ErrorMatrixMetric("mae", stream="test"),
        }
    else:
        matrices = {"test": AccuracyMatrixMetric(stream="test")}
    if bench.has_validation:
        matrices["valid"] = AccuracyMatrixMetric(stream="valid", prefix="valid/")
    # Resuming, the strategy built here is replaced by the checkpoint's, loggers included: a
    # TensorBoard logger made now would only leave an empty events file in the run directory.
    tensorboard = None if resuming else RunTensorboardLogger(run_dir)  # "<run name>/seed<k>"
    loggers = [tensorboard] if tensorboard is not None else []
    if not quiet:
        loggers.append(ProgressLogger(bench.experience_names))
    with warnings.catch_warnings():  # "No loggers specified" (resuming quietly): they come back
        warnings.filterwarnings("ignore", "No loggers specified")
        evaluator = LeanEvaluationPlugin(
            TrainingCurvesMetric(),
            *matrices.values(),
            loggers=loggers,
            # clstm reads the metrics' own results; keeping every value emitted (heatmap images
            # included) only grew memory and every checkpoint (~0.5 MB after three experiences)
            collect_all=False,
        )
    strategy = build_strategy(
        cfg, model=model, device=device, evaluator=evaluator, plugins=plugins,
        windows_per_series=bench.windows_per_series, target=bench.target,
    )  # fmt: skip
    done = 0
    if resuming:
        try:
            strategy, done = load_strategy(strategy, run_dir / CHECKPOINT, device)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign checkpoint file
            raise OutputError(
                f"cannot load {run_dir / CHECKPOINT} ({type(exc).__name__}: {exc}); remove it "
                "to restart this run, or pass overwrite=True",
                cli=f"cannot load {run_dir / CHECKPOINT} ({type(exc).__name__}: {exc}); remove it "
                "to restart this run with --resume, or pass --overwrite",
            ) from None
        for metric in strategy.evaluator.metrics:  # the restored metrics hold the rows so far
            if isinstance(metric, AccuracyMatrixMetric):  # (ErrorMatrixMetric too: MSE, MAE)
                measure = getattr(metric, "measure", "mse")
                key = metric.stream if measure == "mse" else f"{metric.stream}_{measure}"
                matrices[key] = metric
        tensorboard = next(lg for lg in strategy.evaluator.loggers if hasattr(lg, "relocate"))
        tensorboard.relocate(run_dir)  # the run folder may have moved since the checkpoint
        _progress_from_checkpoint(strategy, done, meta, elapsed)
    scenario = bench.scenario
    streams = [scenario.test_stream] + ([scenario.valid_stream] if "valid" in matrices else [])
    status, error, failure, timings = "completed", None, None, list(meta.get("timings", []))
    try:
        if cfg.eval.initial and not resuming:
            t0 = time.perf_counter()
            for stream in streams:
                strategy.eval(stream)
            meta["initial_eval_s"] = round(time.perf_counter() - t0, 3)
        once = STRATEGIES[cfg.strategy.name].trains_once  # joint: one call on the whole stream
        chunks = [scenario.train_stream] if once else list(scenario.train_stream)[done:]
        for chunk in chunks:
            t0 = time.perf_counter()
            strategy.train(chunk)
            t1 = time.perf_counter()
            for stream in streams:
                strategy.eval(stream)
            t2 = time.perf_counter()
            name = "all" if once else bench.experience_names[chunk.current_experience]
            timings.append(
                {"experience": name, "train_s": round(t1 - t0, 3), "eval_s": round(t2 - t1, 3)}
            )
            meta["timings"] = timings  # progress on disk, for a run that gets killed
            meta["elapsed_s"] = round(elapsed(), 3)  # and the wall time up to it
            if (
                cfg.checkpoint != "off"
                and not once
                and STRATEGIES[cfg.strategy.name].checkpointable
            ):
                # The same progress inside the checkpoint: a kill between the two writes must
                # not leave the resumed run's timings (and experiences trained) one behind.
                strategy.clstm_progress = {
                    "timings": list(timings), "elapsed_s": meta["elapsed_s"],
                    "initial_eval_s": meta.get("initial_eval_s"),
                }  # fmt: skip
                save_strategy(strategy, run_dir / CHECKPOINT)
            write_json_atomic(run_dir / "meta.json", meta)
        if matrices["test"].measured:
            outcome.write_hparams(
                tensorboard.writer,
                cfg,
                *matrices["test"].result(),
                regression="test_mae" in matrices,
            )
    except RunDiverged as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt as exc:  # record what was measured, then let the caller re-raise
        status, error = "interrupted", interruption(exc)
        failure = (exc, traceback.format_exc())
    except Exception as exc:  # recorded in the run directory, then re-raised by the caller
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        failure = (exc, traceback.format_exc())
    finally:
        close_events(tensorboard.writer)
    return status, error, failure, timings, matrices


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
