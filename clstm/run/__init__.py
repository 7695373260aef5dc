"""Running experiments: one run, its directory and record, and sweeps of many.

- :mod:`~clstm.run.runner`: :func:`run_experiment`, one experiment (one strategy, one seed) into
  its run directory;
- :mod:`~clstm.run.protocol`: the continual-learning loop of a run (evaluate, then train and
  evaluate on each experience), with a checkpoint after each;
- :mod:`~clstm.run.outcome`: :class:`RunResult`, what a run produced, and its ``metrics.json``;
- :mod:`~clstm.run.rundir`: names, identity, lock and status of a run directory;
- :mod:`~clstm.run.provenance`, :mod:`~clstm.run.checkpoint`, :mod:`~clstm.run.stopping`,
  :mod:`~clstm.run.logging`: what a run records, saves, how it stops and what it logs;
- :mod:`~clstm.run.sweep` and :mod:`~clstm.run.grid`: many runs (seeds x grid values), local
  workers or Ray.

Importing this package imports nothing else.
"""
