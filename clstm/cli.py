"""The ``clstm`` command. Heavy modules (torch, Avalanche) are imported only by ``clstm run``.

Exit status: 0 the run completed; 1 it diverged, failed or was interrupted (Ctrl-C, SIGTERM), or
its results could not be written or read (disk full, corrupt files); 2 a usage error (bad config,
missing file, existing run directory, a run directory another process is writing) - reported in
one line, nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from clstm import __version__

EPILOG = """examples:
  clstm run experiments/quickstart.yaml
  clstm run experiments/quickstart.yaml --set train.lr=0.01 --set model.hidden_size=128 --seed 3
  clstm tune experiments/tune/seq_digits_permuted_ewc.yaml --workers 2
  clstm list
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clstm",
        description="Continual learning with recurrent sequence models on Avalanche.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"clstm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_run(commands)
    _add_tune(commands)
    commands.add_parser(
        "list", help="list built-in benchmarks (scenarios, offline or download) and strategies"
    )
    _add_data(commands)
    _add_report(commands)
    return parser


def _add_run(commands) -> None:
    """``clstm run``: one run, or a sweep."""
    run = commands.add_parser(
        "run",
        help="run an experiment config: one run, or a sweep over seeds and grid values",
        description="Train on every experience in turn, evaluate on all of them after each, and "
        "write results/<experiment>/<run name>/seed<k>/ (the run name is the strategy and the "
        "--set values). --seeds/--grid (or a sweep: section) run a sweep.",
    )
    run.add_argument("config", help="experiment YAML file, e.g. experiments/quickstart.yaml")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.lr=0.01 (repeatable)",
    )
    run.add_argument("--seed", type=int, help="run seed (replaces the config's `seed`)")
    run.add_argument(
        "--name",
        dest="run_name",
        metavar="NAME",
        help="name of the run's folder (default: the strategy and the --set values)",
    )
    run.add_argument(
        "--seeds", metavar="SEEDS", help="sweep over seeds: a range 0-4 or a list 0,3,7"
    )
    run.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="sweep over values of a field, e.g. --grid strategy.name=naive,replay (repeatable)",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="sweeps: runs at once, in separate processes sharing the CPU cores (default 1)",
    )
    run.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        help="root of the run directories (default: results)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    run.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="sweeps: run on local worker processes (default) or as Ray tasks",
    )
    run.add_argument(
        "--address", help="--backend ray: address of an existing Ray cluster ('auto': this one)"
    )
    run.add_argument(
        "--cpus-per-run", type=float, default=1, metavar="N", help="--backend ray: CPUs per run"
    )
    run.add_argument(
        "--gpus-per-run", type=float, default=0, metavar="N", help="--backend ray: GPUs per run"
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="skip completed runs; continue interrupted ones from their last checkpoint",
    )
    run.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads per run (default: all cores for one run; cores / workers in sweeps)",
    )
    run.add_argument(
        "--allow-large-sweep",
        action="store_true",
        help="allow a sweep of more than 10,000 runs",
    )
    run.add_argument("--quiet", action="store_true", help="print only the final summary")


def _add_tune(commands) -> None:
    """``clstm tune``: a search on validation data, then the final seeds."""
    tune = commands.add_parser(
        "tune",
        help="choose hyperparameters on validation data (a tune: section), then run the final "
        "seeds",
        description="Run the trials of FILE's tune: section on validation data only (the test "
        "stream is never evaluated), select the best by tune.metric, then run it with "
        "tune.final_seeds: OUT/<experiment>/tune/ (trials, selection.json) and "
        "OUT/<experiment>/final/ (see docs/tuning.md).",
    )
    tune.add_argument("config", help="experiment YAML file with a tune: section")
    tune.add_argument("--out", default="results", metavar="DIR", help="root (default: results)")
    tune.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="local worker processes (default) or Ray Tune (ASHA with "
                      "tune.scheduler: asha)")  # fmt: skip
    tune.add_argument("--workers", type=int, default=1, metavar="N",
                      help="local engine: runs at once (default 1)")  # fmt: skip
    tune.add_argument("--resume", action="store_true",
                      help="continue an interrupted tune (finished runs are kept)")  # fmt: skip
    tune.add_argument("--threads", type=int, metavar="N",
                      help="torch threads per run (default: cores / workers)")  # fmt: skip
    tune.add_argument("--quiet", action="store_true", help="print only the selection and summary")


def _tune(args: argparse.Namespace) -> int:
    from clstm.errors import ConfigError
    from clstm.run.stopping import stop_on_signals

    def progress(stage: str, row: dict, done: int, total: int) -> None:
        score = row.get("validation_score")
        scores = f"validation {score:.3f}" if score is not None else progress_scores(row)
        if not args.quiet:
            print(f"[{stage} {done}/{total}] {row['run_name']} seed {row['seed']}: "
                  f"{row['status']}  {scores}", flush=True)  # fmt: skip

    try:
        from clstm.run.tune import selection_text, tune

        with stop_on_signals():
            result = tune(args.config, out=args.out, engine=args.engine, workers=args.workers,
                          resume=args.resume, threads=args.threads, on_result=progress,
                          cli=True)  # fmt: skip
    except ConfigError as exc:
        return _usage_error(exc.cli_message)
    except OSError as exc:
        return _fault(exc)
    except KeyboardInterrupt as exc:
        return _interrupted(exc, "tune ", "finished runs are kept")
    print(selection_text(result))
    print(f"report: clstm report {result.folder}\ncompare runs: {tensorboard_hint(result.folder)}")
    return 1 if result.failed else 0


def _add_data(commands) -> None:
    """``clstm data list`` and ``clstm data fetch``."""
    data = commands.add_parser(
        "data",
        help="list which benchmarks run offline here, or fetch their files",
        description="Benchmarks whose files are downloaded (smnist/pmnist, har, UCR/UEA sets that "
        "aeon does not ship) read them from a data root: --root, else $CLSTM_DATA, else "
        "~/.cache/clstm. Fetch on a machine with network, then run offline with the same root.",
    )
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_list = data_commands.add_parser("list", help="offline, cached or needs a download")
    data_fetch = data_commands.add_parser(
        "fetch",
        help="download files: NAME... (smnist, pmnist, har) or ucr SET... (UCR/UEA set names)",
    )
    data_fetch.add_argument("names", nargs="+", metavar="NAME")
    data_fetch.add_argument(
        "--quiet", action="store_true", help="no progress line while downloading"
    )
    for sub in (data_list, data_fetch):
        sub.add_argument("--root", metavar="DIR", help="data root (default $CLSTM_DATA or cache)")


def _add_report(commands) -> None:
    """``clstm report``."""
    report = commands.add_parser(
        "report",
        help="aggregate finished runs: tables (Markdown, LaTeX, CSV) and figures",
        description="Mean, std and 95% CI over seeds for every experiment and run below "
        "RESULTS_DIR (one row per run name and config); failed or incomplete runs are counted "
        "and flagged, never averaged in. Prints the main table and writes Markdown, LaTeX, CSV "
        "and figures.",
    )
    report.add_argument(
        "results_dirs",
        nargs="*",
        default=["results"],
        metavar="RESULTS_DIR",
        help="folders holding runs: results/, or experiment folders (default: results)",
    )
    report.add_argument("--out", metavar="DIR", help="where to write (default RESULTS_DIR/report)")
    report.add_argument(
        "--markdown", metavar="PATH", help="write the Markdown report here instead of DIR/report.md"
    )
    report.add_argument("--no-figures", action="store_true", help="tables only")
    report.add_argument(
        "--columns",
        metavar="KEYS",
        help="metrics of the LaTeX and terminal tables (default acc,bwt,forgetting,"
        "learning_accuracy; also fwt, forgetting_learned)",
    )
    report.add_argument(
        "--tex-caption", metavar="TEXT", help="LaTeX caption ({experiment} is replaced)"
    )
    report.add_argument(
        "--tex-label", metavar="PREFIX", default="tab:", help="LaTeX label prefix (default tab:)"
    )
    report.add_argument(
        "--archive",
        metavar="DIR",
        help="also copy config.yaml, metrics.json and meta.json of every completed run into DIR "
        "(to commit: `clstm report DIR` regenerates the report; later reports can read DIR "
        "beside new runs)",
    )
    report.add_argument(
        "--published",
        metavar="FILE",
        help="YAML of published values (experiment: [{run, source, values}]): a table under "
        "each experiment compares them with the runs (difference, inside the 95%% CI)",
    )
    report.add_argument("--bibtex", action="store_true", help="print the BibTeX entry and exit")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clstm`` console script."""
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as exc:  # a second Ctrl-C while the first was being handled
        return _interrupted(exc, "", "stopped at once")


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "data":
        if args.data_command is None:
            parser.parse_args(["data", "--help"])
        return _data(args)
    if args.command == "run":
        return _run(args, list(argv) if argv is not None else sys.argv)
    if args.command == "report":
        return _report(args)
    if args.command == "tune":
        return _tune(args)
    parser.print_help()
    return 2


def _list() -> int:
    import dataclasses
    import json

    from clstm.data.catalog import availability, scenarios, target
    from clstm.data.registry import BENCHMARKS
    from clstm.strategies import STRATEGIES

    print("benchmarks (benchmark.name) [scenarios, default first; targets] (data):")
    for name, (_, description) in BENCHMARKS.items():
        if name == "python":
            print(f"  {name:<12} {description}")
            continue
        state = availability(name)
        where = state.state + (f": {state.detail}" if state.state != "offline" else "")
        kinds = f"{', '.join(scenarios(name))}; {target(name)}"
        print(f"  {name:<12} {description} [{kinds}] ({where})")
    print("strategies (strategy.name) [scenarios; targets] and hyperparameters (defaults):")
    for name, entry in STRATEGIES.items():
        kinds = f"{', '.join(entry.scenarios)}; {', '.join(entry.targets)}"  # target kinds
        if entry.sequence_scenarios is not None:
            kinds += f"; with sequence targets only {', '.join(entry.sequence_scenarios)}"
        print(f"  {name:<12} {entry.description} [{kinds}]")
        options = [
            f"{f.name}={json.dumps(list(f.default) if isinstance(f.default, tuple) else f.default)}"
            for f in dataclasses.fields(entry.config)
            if f.name != "name"
        ]
        if options:
            print(f"  {'':<12}   " + ", ".join(options))
    return 0


def _data(args: argparse.Namespace) -> int:
    import contextlib

    from clstm.data import catalog
    from clstm.data.cache import data_root, quiet
    from clstm.errors import ConfigError, DataError

    try:
        if args.data_command == "list":
            print(f"data root: {data_root(args.root)}")
            for name, kinds, state, detail in catalog.table(args.root):
                print(f"  {name:<12} {state:<13} [{kinds}] {detail}")
            return 0
        with quiet() if args.quiet else contextlib.nullcontext():
            for line in catalog.fetch(args.names, args.root):
                print(line, flush=True)
    except ConfigError as exc:
        return _usage_error(exc.cli_message)
    except DataError as exc:
        return _usage_error(str(exc))
    except KeyboardInterrupt as exc:
        return _interrupted(exc, "data fetch ", "no partial file was kept", False)
    return 0


def _run(args: argparse.Namespace, command: list[str]) -> int:
    from clstm.config.schema import check_threads
    from clstm.errors import ConfigError
    from clstm.run.stopping import stop_on_signals

    if args.seed is not None and args.seed < 0:
        return _usage_error("--seed must be >= 0")
    try:
        check_threads(args.threads, cli=True)
        from clstm.run.grid import read_sweep_file

        raw, sweep = read_sweep_file(args.config)
    except ConfigError as exc:
        return _usage_error(exc.cli_message)
    # Ctrl-C and SIGTERM (how SLURM and most schedulers stop a job) stop the run at its next
    # training or evaluation step, which records what was measured (clstm.run.stopping).
    with stop_on_signals():
        return _run_or_sweep(args, raw, sweep, command)


def _run_or_sweep(args: argparse.Namespace, raw: dict, sweep: dict, command: list[str]) -> int:
    from clstm.errors import ConfigError, RunFailed

    try:
        if sweep or args.seeds is not None or args.grid or args.backend == "ray":
            if args.seed is not None:
                return _usage_error("give either --seed (one run) or --seeds (a sweep), not both")
            if args.run_name is not None:
                return _usage_error(
                    "--name names one run; a sweep names its runs by their swept values"
                )
            return _sweep(args, raw, sweep)
        from clstm.run.runner import run_experiment

        if not args.quiet:
            print(f"clstm {__version__}: running {args.config}", flush=True)
        result = run_experiment(
            args.config,
            overrides=args.overrides,
            seed=args.seed,
            out=args.out,
            overwrite=args.overwrite,
            quiet=args.quiet,
            command=command,
            resume=args.resume,
            run_name=args.run_name,
            threads=args.threads,
            cli=True,
        )
    except ConfigError as exc:
        return _usage_error(exc.cli_message)
    except (RunFailed, OSError) as exc:
        return _fault(exc)
    except KeyboardInterrupt as exc:
        if not getattr(exc, "started", True):
            return _interrupted(exc, "", "the run had not started: nothing was written", False)
        return _interrupted(exc, "", "what was measured is in the run directory")
    print(summary_text(result, Path(args.out)))
    return 0 if result.status == "completed" else 1


def _sweep(args: argparse.Namespace, raw: dict, sweep: dict) -> int:
    from clstm.errors import ConfigError
    from clstm.run.grid import parse_grid, parse_seeds
    from clstm.run.sweep import run_sweep

    try:
        seeds = parse_seeds(
            args.seeds if args.seeds is not None else sweep.get("seeds", raw.get("seed", 0))
        )
        grid = {**(sweep.get("grid") or {}), **parse_grid(args.grid)}

        def progress(row: dict, done: int, total: int) -> None:
            print(
                f"[{done}/{total}] {row['run_name']} seed {row['seed']}: "
                f"{row['status']}  {progress_scores(row)}",
                flush=True,
            )

        result = run_sweep(
            raw, seeds=seeds, grid=grid, overrides=args.overrides, out=args.out,
            workers=args.workers, overwrite=args.overwrite, resume=args.resume,
            backend=args.backend, address=args.address, cpus_per_run=args.cpus_per_run,
            gpus_per_run=args.gpus_per_run, allow_large=args.allow_large_sweep,
            threads=args.threads, on_result=progress, cli=True,
        )  # fmt: skip
    except ConfigError as exc:
        return _usage_error(exc.cli_message)
    except OSError as exc:
        return _fault(exc)
    except KeyboardInterrupt as exc:
        return _interrupted(exc, "sweep ", "unfinished runs are marked interrupted in sweep.json")
    failed = result.failed
    print(
        f"{len(result.runs)} runs: {len(result.runs) - len(failed)} completed, {len(failed)} not "
        f"completed\nsummary: {result.summary_path}\ncompare runs: "
        f"{tensorboard_hint(result.summary_path.parent)}"
    )
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from clstm.report import BIBTEX, write_report

    if args.bibtex:
        print(BIBTEX.replace("VERSION", __version__))
        return 0
    from clstm.errors import ConfigError

    try:
        command = "clstm report " + " ".join(sys.argv[2:]) if args.markdown else None
        report = write_report(
            args.results_dirs, args.out, with_figures=not args.no_figures,
            markdown_path=args.markdown, command=command, columns=args.columns,
            tex_caption=args.tex_caption, tex_label=args.tex_label, archive=args.archive,
            published=args.published,
        )  # fmt: skip
    except ConfigError as exc:
        return _usage_error(exc.cli_message)
    except OSError as exc:  # OutputError (naming the path), or a fault reading the runs
        return _fault(exc)
    if report.skipped:
        print(
            f"clstm report: warning: skipped {len(report.skipped)} unreadable run(s): "
            + "; ".join(report.skipped),
            file=sys.stderr,
        )
    print(report.table)
    if report.archived is not None:
        copied, present = report.archived
        print(f"archive: {args.archive} ({copied} run(s) copied, {present} already there)")
    print(
        f"report: {report.markdown_path} (report.tex, report.csv and figures beside it or in "
        "--out); numbers measured on other CPU models or library versions may differ slightly"
    )
    return 0


def _fault(exc: Exception) -> int:
    """Exit 1 with one line: a run that failed, or results that could not be written or read."""
    from clstm.errors import ClstmError

    if isinstance(exc, ClstmError):
        message = exc.cli_message
    else:  # an OSError outside a run, e.g. a results folder removed underneath, a full disk
        message = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    print(f"clstm: error: {message}", file=sys.stderr)
    return 1


def _interrupted(exc: BaseException, what: str, kept: str, resumable: bool = True) -> int:
    """Exit 1 with one line after Ctrl-C or SIGTERM."""
    from clstm.errors import interruption_cause

    cause = interruption_cause(exc)
    hint = " (continue with --resume)" if resumable else ""
    print(f"clstm: {what}interrupted by {cause}; {kept}{hint}", file=sys.stderr)
    return 1


def _usage_error(message: str) -> int:
    print(f"clstm: error: {message}", file=sys.stderr)
    return 2


def progress_scores(row: dict) -> str:
    """What a sweep's progress line says of a finished run: its kind's main summaries (those
    defined; ``ACC 0.504  forgetting 0.521``), else its error."""
    from clstm.metrics import metric
    from clstm.targets import SEQUENCE, kind_named

    try:
        kind = kind_named(row.get("target") or SEQUENCE.name)
    except ValueError:  # a kind this process does not know
        return row.get("error") or ""
    shown = [
        f"{metric(k).label} {metric(k).text(row[k])}"
        for k in kind.progress_keys
        if row.get(k) is not None
    ]
    return "  ".join(shown) if shown else (row.get("error") or "")


def summary_text(result, out: Path) -> str:
    """The end-of-run table: the run's first matrix (accuracies, or MSE), its kind's summaries,
    the paths to the results."""
    from clstm.metrics import metric

    m = result.metrics
    names = result.experience_names
    width = max(9, *(len(n) for n in names)) + 1
    lines = [
        f"{m['status']}: {m['experiment']} / {m['strategy']} / seed {m['seed']}  "
        f"({m['experiences_trained']}/{len(names)} experiences, {m['wall_time_s']:.1f} s)",
    ]
    if m["error"]:
        lines.append(f"  {m['error']}")
    kind = result.kind
    initial, matrix = result.matrix(kind.measures[0])
    lines.append(kind.matrix_title)
    lines.append(" " * (width + 2) + "".join(f"{n:>{width}}" for n in names))
    rows = [("(initial)", initial)] if initial is not None else []
    rows += list(zip(names, matrix, strict=True))
    for label, row in rows:
        cells = "".join(f"{'-':>{width}}" if v != v else f"{v:>{width}.3f}" for v in row)
        lines.append(f"  {label:<{width}}{cells}")
    lines.append("   ".join(f"{metric(k).label} {metric(k).text(m.get(k))}" for k in kind.cli_keys))
    lines.append(f"results: {result.run_dir}")
    lines.append(f"compare runs: {tensorboard_hint(out / m['experiment'])}")
    lines.append("(numbers can differ slightly on another CPU model or library version)")
    return "\n".join(lines)


def tensorboard_hint(experiment_dir: Path) -> str:
    """The command and the URL that compare an experiment's runs: curves unsmoothed and one
    colour per strategy (TensorBoard's ``smoothing`` and ``runColorGroup`` URL parameters; the
    run names start with the strategy)."""
    return (
        f"tensorboard --logdir {experiment_dir}\n  then open http://localhost:6006/?smoothing=0"
        "&runColorGroup=regex:%5E(%5B%5E_%2F%5D%2B)&tagFilter=cl%2F#timeseries"
    )


if __name__ == "__main__":
    sys.exit(main())
