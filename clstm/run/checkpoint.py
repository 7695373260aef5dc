"""Checkpoints after every experience, with Avalanche's own checkpointing, fixed for current torch.

Avalanche's ``save_checkpoint`` pickles the whole strategy with dill: model, optimizer, every
plugin's state (replay buffers, EWC importances, GEM memories, the LR schedule, ...), the evaluator
with its metrics so far, and Avalanche's RNG manager (Python, NumPy and torch generators).
``maybe_load_checkpoint`` restores all of it into a freshly built strategy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch


def _restore_torch_optim_submodules() -> None:
    """Put ``torch.optim.adam`` & co. back as attributes of ``torch.optim``.

    Why: ``torch/optim/__init__.py`` deletes its submodule attributes (``del adam, sgd, ...``).
    dill then cannot find ``torch.optim.<module>`` when it looks the optimizer classes up, pickles
    them by value and fails on a ``typing_extensions`` sentinel ("Can't pickle sentinel: it's not
    the same object as typing_extensions.sentinel"), so Avalanche 0.6's ``save_checkpoint`` fails
    for every strategy. With the attributes back, classes pickle by reference. (Excluding the
    optimizer from the checkpoint instead would silently lose its state.)
    """
    import torch.optim

    for name, module in list(sys.modules.items()):
        parent, _, child = name.rpartition(".")
        if parent == "torch.optim" and module is not None and not hasattr(torch.optim, child):
            setattr(torch.optim, child, module)


def _save_checkpoint_fast(strategy, fname: str) -> None:
    """Avalanche's ``save_checkpoint`` (the same dictionary, loaded by the same
    ``maybe_load_checkpoint``), pickled with Python's C pickler where the strategy allows.

    Why: dill pickles with Python's pure-Python pickler, ~5x slower (a checkpoint of a small
    model took ~35 ms of a run's ~0.1 s of fixed cost). dill's loader reads standard pickles,
    so only saving changes. Strategies holding what only dill can pickle (lambdas, local
    classes) fall back to dill, as Avalanche does.
    """
    import copy
    import io
    import pickle

    import dill
    from avalanche.training.determinism.rng_manager import RNGManager

    data = {
        "strategy": copy.copy(strategy),
        "rng_manager": RNGManager,
        "exp_counter": strategy.clock.train_exp_counter,
    }
    buffer = io.BytesIO()
    try:
        torch.save(data, buffer, pickle_module=pickle)
    except (pickle.PicklingError, AttributeError, TypeError):
        buffer = io.BytesIO()
        torch.save(data, buffer, pickle_module=dill)
    with open(fname, "wb") as handle:
        handle.write(buffer.getbuffer())


def save_strategy(strategy, path: str | Path) -> None:
    """Checkpoint ``strategy`` to ``path`` atomically (temporary file, then rename)."""
    _restore_torch_optim_submodules()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        _save_checkpoint_fast(strategy, str(tmp))
        os.replace(tmp, path)
    except BaseException:  # e.g. disk full: a partial file must not keep the disk full
        tmp.unlink(missing_ok=True)
        raise


def load_strategy(strategy, path: str | Path, device: torch.device):
    """Restore a checkpoint into ``strategy``; returns ``(strategy, experiences trained)``."""
    import contextlib
    import io
    import warnings

    from avalanche.checkpointing import maybe_load_checkpoint

    _restore_torch_optim_submodules()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # Avalanche prints a line per device mapping; a checkpoint written before clstm 0.2 names
        # classes by their modules' old paths, which import with a DeprecationWarning meant for
        # users' own imports (clstm.MOVED)
        warnings.filterwarnings("ignore", "clstm.* moved to ", DeprecationWarning)
        return maybe_load_checkpoint(strategy, str(path), map_location=device)
