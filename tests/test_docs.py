"""The README and docs/ as a user reads them: every snippet runs or parses as written, every link
resolves, and the README stays short (reference material lives in docs/)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _fenced(page: Path) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block of a page, in order."""
    blocks, language, lines = [], None, []
    for line in page.read_text().splitlines():
        if language is None and line.startswith("```"):
            language, lines = line[3:].strip(), []
        elif language is not None and line.strip() == "```":
            blocks.append((language, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def _blocks(language: str) -> list[tuple[str, str]]:
    """``(page, code)`` of every fenced block of ``language`` ("" for plain blocks)."""
    return [
        (p.relative_to(ROOT).as_posix(), code)
        for p in PAGES
        for lang, code in _fenced(p)
        if lang == language
    ]


PYTHON = _blocks("python")


def test_the_readme_is_short_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 450 and len(readme.encode()) <= 35 * 1024
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README does not link docs/{page.name}"
    assert "<!-- ci:install -->" in readme and "<!-- ci:test -->" in readme


def test_there_are_python_snippets_in_the_readme_and_the_docs():
    pages = {page for page, _ in PYTHON}
    assert "README.md" in pages and len(pages) >= 3 and len(PYTHON) >= 5


@pytest.mark.parametrize("index", range(len(PYTHON)), ids=[f"{p}#{i}" for i, (p, _) in
                                                             enumerate(PYTHON)])  # fmt: skip
@pytest.mark.filterwarnings("ignore::UserWarning")  # Avalanche's logger/deprecation notices
def test_python_snippet_runs_as_written(index, tmp_path, tiny_config, monkeypatch):
    """Run in an empty folder whose experiments/quickstart.yaml is the tiny test config, so
    snippets that run the quickstart stay fast; everything else is the page's text."""
    page, code = PYTHON[index]
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "quickstart.yaml").write_text(
        yaml.safe_dump({**tiny_config, "name": "quickstart"})
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"snippet_{index}"}
    exec(compile(code, f"{page} python block", "exec"), namespace)
    if "R" in namespace:  # the plain Avalanche example measured a full matrix
        assert namespace["R"].shape == (3, 3) and not (namespace["R"] != namespace["R"]).any()
    if "result" in namespace:
        assert namespace["result"].status == "completed"
        assert namespace["result"].run_dir.is_relative_to(Path("results"))
    assert os.getcwd() == str(tmp_path)


def test_yaml_snippets_are_valid_configs_sweeps_or_published_values(tmp_path):
    from clstm.config import load_config
    from clstm.config.yamlio import load_yaml
    from clstm.report.published import load_published
    from clstm.run.grid import read_sweep_file
    from clstm.run.tune import read_tune_file
    from clstm.run.tunespec import check_against, parse_tune

    blocks = _blocks("yaml")
    assert len(blocks) >= 3
    for page, code in blocks:
        data = load_yaml(code)
        path = tmp_path / "snippet.yaml"
        path.write_text(code)
        if "sweep" in data:
            raw, sweep = read_sweep_file(path)
            assert sweep["grid"], page
        elif "tune" in data:  # checked as clstm tune checks it before running
            raw, section = read_tune_file(path)
            check_against(parse_tune(section), raw)
        elif {"benchmark", "strategy", "model", "train"} & set(data):
            load_config(data)  # validated, as clstm run would
        else:  # a published-values file: experiment -> entries
            assert load_published(path), page


def _commands() -> list[tuple[str, str]]:
    """Every ``clstm ...`` command line of the shell and plain blocks (continuations joined,
    environment assignments before it dropped), but synopses (``[--opt ...]``)."""
    out = []
    for page, code in [*_blocks("bash"), *_blocks("")]:
        for line in code.replace("\\\n", " ").splitlines():
            if not re.match(r"\s*([A-Z_]+=\S*\s+)*clstm\s", line):
                continue
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words[:1] == ["clstm"] and "[" not in line and "|" not in line:
                out.append((page, words[1:]))
    return out


def test_every_documented_clstm_command_parses():
    from clstm import cli

    commands = _commands()
    assert len(commands) >= 8
    for page, words in commands:
        try:
            args = cli._parser().parse_args(words)
        except SystemExit as exc:  # argparse's exit: 0 after --version, else a wrong command
            if exc.code != 0:
                pytest.fail(f"{page}: `clstm {' '.join(words)}` does not parse (exit {exc.code})")
            continue
        assert args.command in ("run", "tune", "report", "list", "data"), (page, words)


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_resolves_to_a_file_and_heading():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{page.name}: link to missing {target}"
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", file.read_text(), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{page.name}: no #{anchor}"


def test_every_module_path_the_docs_cite_imports():
    """``clstm.x.y`` in the README and docs names a module or an attribute of one; only
    docs/api.md's table of moved modules names old paths (clstm.MOVED: they import, warning)."""
    import importlib
    import warnings

    import clstm

    for page in PAGES:
        for name in sorted(set(re.findall(r"`(clstm(?:\.\w+)+)`", page.read_text()))):
            parts = name.split(".")
            for k in range(len(parts), 0, -1):
                path = ".".join(parts[:k])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    try:
                        module = importlib.import_module(path)
                    except ImportError:
                        continue
                assert path not in clstm.MOVED or page.name == "api.md", f"{page.name}: {name}"
                obj = module
                for attribute in parts[k:]:
                    assert hasattr(obj, attribute), f"{page.name}: {name} does not exist"
                    obj = getattr(obj, attribute)
                break
            else:
                pytest.fail(f"{page.name}: {name} names no module")


def test_the_readmes_config_is_the_quickstart_file():
    from clstm.config.yamlio import load_yaml

    shown = next(code for page, code in _blocks("yaml") if page == "README.md")
    assert load_yaml(shown) == load_yaml((ROOT / "experiments" / "quickstart.yaml").read_text())
