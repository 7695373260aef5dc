"""Paper-ready reports, TensorBoard for comparing runs, agreement with Avalanche's metrics."""

import io
import json
import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from clstm import cli
from clstm import metrics as clm
from clstm.report import collect, csv_text, latex, markdown, summarize_values
from clstm.report.published import Published
from clstm.run.provenance import cpu_model
from clstm.run.runner import run_experiment
from clstm.run.sweep import run_sweep


def test_confidence_interval_is_students_t():
    stat = summarize_values([0.5, 0.7, 0.6])
    assert stat.mean == pytest.approx(0.6) and stat.std == pytest.approx(0.1)
    assert stat.ci95 == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)  # t(0.975, 2)
    one = summarize_values([0.4])
    assert one.n == 1 and one.mean == 0.4 and one.std is None and one.ci95 is None


@pytest.fixture(scope="module")
def sweep_with_a_failure(tmp_path_factory, make_tiny_config):
    """naive x 2 seeds, separate x 2 seeds, der refused in the task scenario (2 failures)."""
    out = tmp_path_factory.mktemp("results")
    config = make_tiny_config()
    config["benchmark"].update(n_experiences=2, scenario="task")
    grid = {"strategy.name": ["naive", "separate", "der"]}
    run_sweep(config, seeds=(0, 1), grid=grid, out=out, workers=1)
    return out


def test_report_counts_and_flags_runs_that_did_not_complete(sweep_with_a_failure):
    groups = collect(sweep_with_a_failure)["tiny"]
    assert len(groups["naive"].completed) == 2 and not groups["naive"].not_completed
    assert groups["der"].completed == [] and groups["der"].not_completed == {"failed": [0, 1]}
    text = markdown(collect(sweep_with_a_failure))
    row = next(line for line in text.splitlines() if line.startswith("| der |"))
    assert "| 0 |" in row and "2 failed (seed 0, 1)" in row
    naive = [
        json.loads(
            (sweep_with_a_failure / "tiny" / "naive" / f"seed{s}" / "metrics.json").read_text()
        )
        for s in (0, 1)
    ]
    expected = summarize_values([m["acc"] for m in naive])
    assert f"{expected.mean:.3f} ± {expected.std:.3f} [±{expected.ci95:.3f}]" in text


def test_latex_uses_booktabs_math_minus_labels_and_compact_columns(sweep_with_a_failure):
    tex = latex(collect(sweep_with_a_failure), caption="Results on {experiment}.", label="tab:x-")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"der$^\dagger$" in tex and "separate" in tex
    assert r"\caption{Results on tiny.}" in tex and r"\label{tab:x-tiny}" in tex
    header = next(line for line in tex.splitlines() if line.startswith("Method &"))
    assert header == r"Method & $n$ & ACC & BWT & Forgetting & LA \\"  # compact by default
    body = [line for line in tex.splitlines() if line.startswith(("naive", "separate"))]
    assert any("$-0." in line for line in body)  # negative BWT: a math minus, not a hyphen
    assert not any(" -0." in line or "{-0." in line for line in body)
    assert r"{\boldmath$" in tex  # the best cell(s)
    full = latex(collect(sweep_with_a_failure), keys=("acc", "fwt"))
    assert "FWT omitted: exactly 0 in every run" in full  # task scenario: 0 by construction


def _results(*metrics: dict) -> list:
    """Completed runs' outcomes (:class:`clstm.run.outcome.RunResult`) from metrics.json-like
    values: what a report reads of each run."""
    from clstm.run.outcome import result_from_metrics

    base = {"status": "completed", "error": None, "accuracy_matrix": None,
            "initial_accuracy": None, "experience_names": []}  # fmt: skip
    return [result_from_metrics(".", {**base, **m}) for m in metrics]


def test_bold_marks_every_row_whose_interval_overlaps_the_best():
    from clstm.report.table import RunGroup
    from clstm.report.table import best as _best

    def group(name, values):
        return RunGroup("e", name, completed=_results(*({"acc": v} for v in values)))

    groups = {
        "a": group("a", [0.946, 0.950, 0.942]),  # best mean
        "b": group("b", [0.943, 0.947, 0.939]),  # inside a's CI: also bold
        "c": group("c", [0.50, 0.51, 0.49]),  # far below
    }
    assert _best(groups, "acc", True) == {"a", "b"}
    single = {"a": group("a", [0.9]), "b": group("b", [0.8])}  # no CI: the best mean only
    assert _best(single, "acc", True) == {"a"}
    tied = {"a": group("a", [0.0, 0.0]), "b": group("b", [0.0, 0.0])}
    assert _best(tied, "acc", True) == set()


def test_report_prints_the_main_table(sweep_with_a_failure, tmp_path, capsys):
    assert cli.main(["report", str(sweep_with_a_failure), "--out", str(tmp_path / "r"),
                     "--no-figures"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "tiny (mean ± 95% CI half-width over seeds)"
    assert lines[1].split()[:6] == ["run", "n", "ACC", "BWT", "Forgetting", "LA"]
    naive = next(line for line in lines if line.strip().startswith("naive "))
    stat = collect(sweep_with_a_failure)["tiny"]["naive"].stat("acc")
    assert f"{stat.mean:.3f} ± {stat.ci95:.3f}" in naive
    assert any(line.strip().startswith("der ") and "2 failed" in line for line in lines)
    assert "report:" in lines[-1] and "may differ slightly" in lines[-1]


def test_figures_name_experiences_have_a_colour_bar_and_300_dpi(sweep_with_a_failure, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from clstm.report.figures import accuracy_figure, figures, matrices_figure, strategy_style

    groups = collect(sweep_with_a_failure)["tiny"]
    names = json.loads(
        (sweep_with_a_failure / "tiny" / "naive" / "seed0" / "metrics.json").read_text()
    )["experience_names"]
    fig = matrices_figure(groups)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["naive", "separate"]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == names
    assert [t.get_text() for t in panels[0].get_yticklabels()] == names
    assert any(ax.get_ylabel() == "accuracy" for ax in fig.axes)  # the colour bar
    curves = accuracy_figure("tiny", groups)
    assert [t.get_text() for t in curves.axes[0].get_xticklabels()] == names
    colours = {line.get_label(): line.get_color() for line in curves.axes[0].get_lines()}
    styles = strategy_style(groups)
    assert colours["naive"] == styles["naive"][0] and colours["naive"] != colours["separate"]
    made = figures(collect(sweep_with_a_failure), tmp_path)
    with Image.open(tmp_path / made["tiny"][0]) as png:
        assert round(png.info["dpi"][0]) == 300
    assert (tmp_path / "tiny_matrices.pdf").stat().st_size > 0
    # The same runs give the same bytes (no creation date): committed figures change only
    # when their numbers do
    figures(collect(sweep_with_a_failure), tmp_path / "again")
    for name in [*made["tiny"], "tiny_matrices.pdf", "tiny_accuracy.pdf"]:
        assert (tmp_path / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    assert b"/CreationDate" not in (tmp_path / "tiny_matrices.pdf").read_bytes()  # any second


def test_a_strategy_keeps_its_colour_across_reports():
    from clstm.report import RunGroup
    from clstm.report.figures import strategy_style

    def group(strategy, lr):
        return RunGroup("e", strategy, config={"strategy": {"name": strategy}, "lr": lr})

    one = strategy_style({"replay": group("replay", 1), "naive": group("naive", 1)})
    two = strategy_style({"ewc": group("ewc", 1), "replay": group("replay", 1),
                          "replay [lr=2]": group("replay", 2)})  # fmt: skip
    assert one["replay"][0] == two["replay"][0] == two["replay [lr=2]"][0]
    assert two["replay"][1:] != two["replay [lr=2]"][1:]  # same colour, another line style


def test_csv_is_long_format_with_intervals(sweep_with_a_failure):
    rows = csv_text(collect(sweep_with_a_failure)).splitlines()
    assert rows[0] == "experiment,run,metric,n,mean,std,ci95_low,ci95_high,not_completed"
    acc = next(r for r in rows if r.startswith("tiny,naive,acc,"))
    n, mean, std, low, high = acc.split(",")[3:8]
    assert n == "2" and float(low) < float(mean) < float(high)


def test_report_command_writes_tables_and_figures(sweep_with_a_failure, tmp_path, capsys):
    assert cli.main(["report", str(sweep_with_a_failure), "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"report.md", "report.tex", "report.csv"} <= names
    assert {
        "tiny_accuracy.png",
        "tiny_accuracy.pdf",
        "tiny_matrices.png",
        "tiny_matrices.pdf",
    } <= names
    text = (tmp_path / "report.md").read_text()
    assert "![tiny_accuracy](tiny_accuracy.png)" in text
    assert f"Measured on: {cpu_model()} (4 runs)." in text  # each run's meta.json names its CPU
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2
    assert "results folder not found" in capsys.readouterr().err


def test_an_archive_regenerates_the_report_and_accumulates_seeds(
    sweep_with_a_failure, tmp_path, capsys
):
    """--archive keeps the three small files of every completed run (what a repository commits);
    the archive alone gives the same table, read beside the raw runs it counts each run once,
    and nothing archived is ever replaced."""
    archive = tmp_path / "archive"

    def report(*dirs, out, extra=()):
        code = cli.main(["report", *map(str, dirs), "--no-figures", "--out", str(tmp_path / out),
                         *extra])  # fmt: skip
        return code, capsys.readouterr()

    code, printed = report(sweep_with_a_failure, out="raw", extra=["--archive", str(archive)])
    assert code == 0 and f"archive: {archive} (4 run(s) copied, 0 already there)" in printed.out
    runs = sorted(p.relative_to(archive) for p in archive.rglob("seed*"))
    assert [p.parts[:2] for p in runs] == [("tiny", "naive")] * 2 + [("tiny", "separate")] * 2
    kept = ["config.yaml", "meta.json", "metrics.json"]
    assert all(sorted(f.name for f in (archive / p).iterdir()) == kept for p in runs)
    # (the failed, refused DER runs are not archived)

    def completed_rows(out):  # the CSV rows of the completed runs (DER's failures are not archived)
        text = (tmp_path / out / "report.csv").read_text().splitlines()
        return [r for r in text if not r.startswith("tiny,der,")]

    assert report(archive, out="archived")[0] == 0
    assert completed_rows("archived") == completed_rows("raw")
    code, printed = report(
        archive, sweep_with_a_failure, out="both", extra=["--archive", str(archive)]
    )
    assert code == 0 and "(0 run(s) copied, 4 already there)" in printed.out
    csv = "report.csv"
    assert (tmp_path / "both" / csv).read_text() == (tmp_path / "raw" / csv).read_text()

    kept = next(archive.rglob("seed0/metrics.json"))
    kept.write_text(kept.read_text().replace('"status"', ' "status"'))  # another run, same seed
    before = {p: p.read_bytes() for p in archive.rglob("*") if p.is_file()}
    code, printed = report(sweep_with_a_failure, out="again", extra=["--archive", str(archive)])
    assert code == 2 and f"the archive already holds another run at {kept}" in printed.err
    assert "\n" not in printed.err.strip() and not (tmp_path / "again").exists()
    assert {p: p.read_bytes() for p in archive.rglob("*") if p.is_file()} == before


def test_published_values_are_compared_under_their_experiment(
    sweep_with_a_failure, tmp_path, capsys
):
    naive = collect(sweep_with_a_failure)["tiny"]["naive"].stat("acc")
    published = tmp_path / "published.yaml"
    published.write_text(
        "tiny:\n"
        f"  - {{run: naive, source: Paper A Table 2, label: A et al., values: "
        f"{{acc: {naive.mean - 0.01}}}}}\n"
        "  - {run: separate, config: {train.lr: 99}, source: Paper B, values: {acc: 0.5}}\n"
        "other_experiment:\n  - {run: naive, source: Paper C, values: {acc: 0.5}}\n"
    )
    args = ["report", str(sweep_with_a_failure), "--no-figures", "--published", str(published)]
    assert cli.main([*args, "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    low, high = max(naive.mean - naive.ci95, 0), naive.mean + naive.ci95  # within [0, 1]
    inside = "yes" if naive.ci95 >= 0.01 else "no"
    assert "Published: Paper A Table 2." in text
    assert (
        f"| naive | ACC | {naive.mean - 0.01:.4f} | {naive.mean:.4f} (2) | {low:.4f} – {high:.4f} "
        f"| +0.0100 | {inside} |"
    ) in text
    assert "Published (Paper B): no row of this experiment is run separate, train.lr=99." in text
    assert "Paper C" not in text  # an experiment this report does not hold
    tex = (tmp_path / "rep" / "report.tex").read_text()  # a row below the runs', in the columns
    assert f"\\midrule\nA et al. & -- & ${naive.mean - 0.01:.3f}$ & -- & " in tex
    assert "Paper B & -- & $0.500$ & " in tex  # named by its source without a label
    assert text.index("| naive | 2 |") < text.index("Published: Paper A")  # under the table

    def report_one(key, value, extra, title):
        """One published entry for naive's ``key``: the report's folder, text and naive's row."""
        published.write_text(
            f"tiny:\n  - {{run: naive, source: P, values: {{{key}: {value}}}{extra}}}\n"
        )
        rep = tmp_path / f"one{len(list(tmp_path.glob('one*')))}"
        assert cli.main([*args, "--out", str(rep)]) == 0
        text = (rep / "report.md").read_text()
        return rep, text, next(r for r in text.splitlines() if r.startswith(f"| naive | {title}"))

    # A rounded published value ("~100%", printed_to 0.01) is inside when the interval meets the
    # values that round to it, and the table says so; outside that range it stays "no".
    forgetting = collect(sweep_with_a_failure)["tiny"]["naive"].stat("forgetting")
    for offset, printed_to, expected in [
        (0.004, 0.01, "yes, to its rounding"),  # 0.004 past the interval, within ± 0.005
        (0.006, 0.01, "no"),  # 0.001 beyond the rounding's reach
        (0.004, None, "no"),  # without printed_to, as before
    ]:
        value = forgetting.mean + forgetting.ci95 + offset
        extra = "" if printed_to is None else f", printed_to: {printed_to}"
        rep, text, row = report_one("forgetting", value, extra, "Forgetting")
        assert row.endswith(f"| {expected} |"), row
        note = "printed to 0.01: each stands for the values that round to it (± 0.005)"
        assert (note in text) == (printed_to is not None)
        cell = f"${value:.2f}$" if printed_to else f"${value:.3f}$"  # the digits printed
        assert f"P & -- & -- & -- & {cell} & --" in (rep / "report.tex").read_text()

    # An accuracy's interval is shown within [0, 1] (a t interval can reach past 0% or 100%)
    acc = collect(sweep_with_a_failure)["tiny"]["naive"].stat("acc")
    assert acc.mean - acc.ci95 < 0  # two seeds: a wide interval
    _, _, row = report_one("acc", 0.5, "", "ACC")
    assert f"| 0.0000 – {min(acc.mean + acc.ci95, 1):.4f} |" in row, row

    # A published value that is one run is compared with where one clstm run would fall (the
    # prediction interval, sqrt(1 + 1/n) where the mean's has sqrt(1/n)), not with the mean's CI
    bwt = collect(sweep_with_a_failure)["tiny"]["naive"].stat("bwt")  # not bound to [0, 1]
    assert bwt.n == 2
    half = 12.706204736174698 * bwt.std * (1 + 1 / 2) ** 0.5  # t(0.975, 1 dof), by hand
    value = bwt.mean - 1.5 * bwt.ci95  # outside the mean's CI, inside one run's interval
    for runs, expected in [(1, "yes"), (None, "no")]:
        _, text, row = report_one("bwt", value, "" if runs is None else f", runs: {runs}", "BWT")
        assert row.endswith(f"| {expected} |"), row
        if runs == 1:
            assert f"| {bwt.mean - half:.4f} – {bwt.mean + half:.4f} |" in row
            assert (
                "| 95% interval for one run |" in text and "published inside the interval" in text
            )
            assert "The published values are one run each" in text
        else:
            assert "| 95% CI |" in text and "one run each" not in text

    for entry, message in [
        ("{run: naive, source: A, values: {acc: 98.66}}", "acc 98.66 is not a fraction in [0, 1]"),
        ("{run: naive, source: A, values: {accuracy: 0.9}}", "unknown metric 'accuracy'"),
        ("{run: naive, values: {acc: 0.9}}", "tiny entry 1: missing source"),
        ("{run: naive, source: A, values: {acc: 0.9}, table: 2}", "unknown table"),
        ("{run: naive, source: A, values: {acc: 0.9}, printed_to: 1}", "printed_to 1 must be"),
        ("{run: naive, source: A, values: {acc: 0.9}, runs: 0}", "runs 0 must be the number"),
        (None, "is not a published-values file: expected experiment names"),
    ]:
        published.write_text(f"tiny:\n  - {entry}\n" if entry else "- tiny\n")
        assert cli.main([*args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and not (tmp_path / "bad").exists()
    args[-1] = str(tmp_path / "missing.yaml")
    assert cli.main([*args, "--out", str(tmp_path / "bad")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bibtex(capsys):
    assert cli.main(["report", "--bibtex"]) == 0
    assert capsys.readouterr().out.startswith("@software{clstm,")


def test_tensorboard_has_loss_heatmaps_and_hparams_matching_metrics_json(tmp_path, tiny_config):
    result = run_experiment(tiny_config, out=tmp_path)
    events = EventAccumulator(str(result.run_dir), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert [e.step for e in events.Images("accuracy_matrix")] == [0, 1, 2, 3]
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["strategy"].string_value == "naive" and hp["seed"].number_value == 0
    assert hp["benchmark.name"].string_value == "synthetic" and hp["scenario"].string_value
    assert hp["train.lr"].number_value == pytest.approx(tiny_config["train"]["lr"])
    assert "_hparams_/experiment" not in content  # one experiment config per folder, below
    final = {tag: events.Scalars(tag)[-1] for tag in ("cl/ACC", "cl/forgetting")}
    assert final["cl/ACC"].step == 3 and final["cl/ACC"].value == pytest.approx(
        result.metrics["acc"]
    )
    assert final["cl/forgetting"].value == pytest.approx(result.metrics["forgetting"])


def test_a_joint_run_logs_its_acc_for_tensorboard_and_hparams(tmp_path, tiny_config):
    """Joint training has no intermediate models: only the last row, hence ACC alone, which
    TensorBoard gets at step T (beside the sequential runs' final ACC) as metrics.json has it."""
    tiny_config["strategy"] = {"name": "joint"}
    result = run_experiment(tiny_config, out=tmp_path)
    events = EventAccumulator(str(result.run_dir))
    events.Reload()
    (acc,) = events.Scalars("cl/ACC")
    assert acc.step == 3 and acc.value == pytest.approx(result.metrics["acc"])
    assert "cl/forgetting" not in events.Tags()["scalars"] and result.metrics["forgetting"] is None


def test_experiment_folder_has_one_hparams_config_and_a_custom_scalars_layout(
    tmp_path, tiny_config
):
    from tensorboard.plugins.custom_scalar import layout_pb2

    tiny_config["benchmark"]["n_experiences"] = 2
    run_sweep(tiny_config, seeds=(0, 1), grid={"strategy.name": ["naive", "ewc"]}, out=tmp_path)
    root = tmp_path / "tiny"
    assert len(list(root.glob("events.out.tfevents.*"))) == 1  # rewritten, not piled up
    events = EventAccumulator(str(root))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]
    ).experiment
    infos = {h.name: h for h in experiment.hparam_infos}
    differing = sorted(name for name, h in infos.items() if h.differs)
    assert differing == ["seed", "strategy"]  # shown first, checked by default in TensorBoard
    assert {"benchmark.name", "scenario", "train.lr", "model.hidden_size"} <= set(infos)
    assert not infos["train.lr"].differs  # the same in every run
    assert {m.name.tag for m in experiment.metric_infos} == {
        "cl/ACC", "cl/BWT", "cl/forgetting", "cl/learning_accuracy"
    }  # fmt: skip
    tensor = events.Tensors("custom_scalars__config__")[0].tensor_proto
    layout = layout_pb2.Layout.FromString(tensor.string_val[0])
    charts = {c.title: list(c.multiline.tag) for c in layout.category[0].chart}
    assert charts["ACC (average accuracy on the experiences seen)"] == ["^cl/ACC$"]
    assert charts["forgetting (best earlier minus now)"] == ["^cl/forgetting$"]
    runs = sorted(str(p.parent.relative_to(root)) for p in root.glob("*/seed*/events.*"))
    assert runs == ["ewc/seed0", "ewc/seed1", "naive/seed0", "naive/seed1"]  # no /tb suffix


def test_clstm_metrics_agree_with_avalanches_where_definitions_coincide(make_tiny_config):
    """Avalanche's StreamForgetting is 'accuracy right after learning minus now' and its StreamBWT
    the negative of it: clstm's forgetting_learned and BWT on the same run."""
    from avalanche.evaluation.metrics import bwt_metrics, forgetting_metrics
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from clstm.config import load_config
    from clstm.data import synthetic
    from clstm.models import build_model
    from clstm.plugins import AccuracyMatrixMetric, LSTMPlugin
    from clstm.run.logging import ProgressLogger

    bench = synthetic.build(
        synthetic.Config(
            n_experiences=3, n_train=96, n_test=60, seq_len=(3, 9), n_features=4, n_classes=3
        )
    )
    torch.manual_seed(0)
    model = build_model(load_config({}, ["model.hidden_size=16"]).model, benchmark=bench)
    matrix = AccuracyMatrixMetric()
    evaluator = EvaluationPlugin(
        matrix, forgetting_metrics(stream=True), bwt_metrics(stream=True),
        loggers=[ProgressLogger(bench.experience_names, stream=io.StringIO())],
    )  # fmt: skip
    strategy = Naive(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        criterion=torch.nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=3, eval_mb_size=64,
        device="cpu", plugins=[LSTMPlugin()], evaluator=evaluator,
    )  # fmt: skip
    for experience in bench.scenario.train_stream:
        strategy.train(experience)
        last = strategy.eval(bench.scenario.test_stream)
    _, R = matrix.result()
    avalanche_forgetting = next(v for k, v in last.items() if k.startswith("StreamForgetting"))
    avalanche_bwt = next(v for k, v in last.items() if k.startswith("StreamBWT"))
    assert clm.forgetting_learned(R) == pytest.approx(avalanche_forgetting, abs=1e-6)
    assert clm.backward_transfer(R) == pytest.approx(avalanche_bwt, abs=1e-6)
    assert abs(clm.forgetting_learned(R)) > 0.05  # a real, non-trivial value was compared
    assert np.isfinite(R).all()


@pytest.mark.slow
def test_latex_table_compiles(sweep_with_a_failure, tmp_path):
    """`pdflatex` on a document that \\input's report.tex (Debian: texlive-latex-recommended)."""
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-recommended)")
    # a paper's row below the runs' (clstm.report.published), with TeX's special characters
    published = [
        Published("tiny", "naive", "Paper & Co. 100%", {"acc": 0.5, "bwt": -0.1}, {}, "A_1 et al.")
    ]
    (tmp_path / "report.tex").write_text(latex(collect(sweep_with_a_failure), published=published))
    assert "A\\_1 et al. & -- & $0.500$ & $-0.100$ & --" in (tmp_path / "report.tex").read_text()
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\begin{document}"
        "\\input{report.tex}Table~\\ref{tab:tiny}.\\end{document}\n"
    )
    for _ in range(2):  # twice, so the \ref resolves
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:]
    log = (tmp_path / "doc.log").read_text()
    assert "undefined" not in log.lower() and (tmp_path / "doc.pdf").stat().st_size > 0


def test_experiences_that_differ_between_seeds_are_labelled_by_position(sweep_with_a_failure):
    """A class order shuffled per run (TSCIL's protocol) puts different classes at one position:
    the averaged matrix must not carry one seed's class names."""
    import matplotlib

    matplotlib.use("Agg")
    from clstm.report.figures import matrices_figure

    groups = collect(sweep_with_a_failure)["tiny"]
    naive = groups["naive"]
    assert len(naive.completed) >= 2
    naive.completed[1].experience_names = ["b", "a"]
    panel = next(ax for ax in matrices_figure(groups).axes if ax.get_title() == "naive")
    assert [t.get_text() for t in panel.get_xticklabels()] == ["exp 1", "exp 2"]


def test_long_run_names_wrap_and_the_legend_leaves_the_plot(sweep_with_a_failure, tmp_path):
    """Rows named by their config values (``si [strategy.eps=0.001, ...]``) must not overlap
    each other's titles or cover the curves, and nothing may be cut off the saved figure."""
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from clstm.report.figures import accuracy_figure, figures, matrices_figure

    groups = collect(sweep_with_a_failure)["tiny"]
    long = "naive [strategy.eps=0.001, strategy.max_importance=null, strategy.nonnegative=true]"
    groups = {long if name == "naive" else name: g for name, g in groups.items()}
    panel = next(ax for ax in matrices_figure(groups).axes if ax.get_title().startswith("naive"))
    assert max(len(line) for line in panel.get_title().splitlines()) <= 34
    assert panel.get_title().replace("\n", " ") == long
    curves = accuracy_figure("tiny", groups)
    legend = curves.axes[0].get_legend()
    legend_box = legend.get_window_extent(curves.canvas.get_renderer())
    assert legend_box.x0 > curves.axes[0].get_window_extent().x1  # beside the plot, not on it
    made = figures({"tiny": groups}, tmp_path)
    with Image.open(tmp_path / made["tiny"][0]) as png:  # saved whole (a tight bounding box)
        assert png.size[0] / 300 >= legend_box.x1 / curves.dpi - 0.1


def test_a_mean_that_rounds_to_zero_prints_without_a_minus_sign():
    from clstm.report import Collected, RunGroup, text_table

    # coresets' BWT on the Copy Task: -0.0002 printed as "-0.000", a sign on a printed zero
    runs = _results({"acc": 0.9, "bwt": -0.0003}, {"acc": 0.92, "bwt": -0.0001})
    group = RunGroup("e", "a", completed=runs, cpus={0: "c", 1: "c"})
    collected = Collected({"e": {"a": group}})
    row = next(r for r in markdown(collected).splitlines() if r.startswith("| a |"))
    assert "| 0.000 ± 0.000" in row and "-0.000" not in row, row
    text = text_table(collected)
    assert " 0.000 ± 0.001" in text and "-0.000" not in text, text
    tex = latex(collected)
    assert "$0.000 \\pm 0.000$" in tex and "$-0.000" not in tex
    # a mean that does not round to zero keeps its sign
    runs[1].metrics["bwt"] = -0.0017
    assert "| -0.001 ± 0.001" in markdown(collected)
    # signed (the published comparison's "clstm − published"): +0.0000, never -0.0000
    from clstm.metrics import fixed

    assert [fixed(v, 4, plus=True) for v in (-0.00002, 0.00002, -0.0098)] == [
        "+0.0000", "+0.0000", "-0.0098"]  # fmt: skip
