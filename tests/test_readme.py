"""Every Python snippet in the README runs as written (on a tiny quickstart config)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)


def test_the_readme_has_python_snippets():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
@pytest.mark.filterwarnings("ignore::UserWarning")  # Avalanche's logger/deprecation notices
def test_readme_snippet_runs_as_written(index, tmp_path, tiny_config, monkeypatch):
    """Run in an empty folder whose experiments/quickstart.yaml is the tiny test config, so
    snippets that run the quickstart stay fast; everything else is the README's text."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "quickstart.yaml").write_text(
        yaml.safe_dump({**tiny_config, "name": "quickstart"})
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), namespace)
    if "R" in namespace:  # the plain Avalanche example measured a full matrix
        assert namespace["R"].shape == (3, 3) and not (namespace["R"] != namespace["R"]).any()
    if "result" in namespace:
        assert namespace["result"].status == "completed"
        assert namespace["result"].run_dir.is_relative_to(Path("results"))
    assert os.getcwd() == str(tmp_path)
