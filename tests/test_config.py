"""Config loading, overrides and strict validation with one-line, key-naming errors."""

import dataclasses
from pathlib import Path

import pytest

from clstm.config import ConfigError, ExperimentConfig, load_config, reference_markdown, to_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_valid_and_complete():
    cfg = load_config({})
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.benchmark.name == "synthetic"
    assert cfg.strategy.name == "naive"
    assert cfg.model.hidden_size == 64 and cfg.train.lr_schedule == "exponential"
    assert cfg.device == "auto"


def test_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_study.yaml"
    path.write_text("seed: 3\n")
    cfg = load_config(path)
    assert cfg.name == "my_study" and cfg.seed == 3


@pytest.mark.parametrize(
    "path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_experiment_loads(path):
    load_config(path)


def test_overrides_parse_yaml_values(tmp_path):
    cfg = load_config(
        {},
        [
            "train.lr=1e-3",  # YAML reads this as a string; float fields accept it
            "benchmark.seq_len=[5, 12]",
            "eval.initial=false",
            "train.grad_clip=null",
            "model.type=gru",
        ],
    )
    assert cfg.train.lr == pytest.approx(0.001)
    assert cfg.benchmark.seq_len == (5, 12)
    assert cfg.eval.initial is False
    assert cfg.train.grad_clip is None
    assert cfg.model.type == "gru"


def test_off_and_no_are_strings_not_booleans(tmp_path):
    # PyYAML's YAML 1.1 reads `off` as False; the README documents `checkpoint: off`.
    path = tmp_path / "x.yaml"
    path.write_text("checkpoint: off\neval:\n  initial: false\n")
    cfg = load_config(path)
    assert cfg.checkpoint == "off"
    assert cfg.eval.initial is False
    assert load_config({}, ["checkpoint=off"]).checkpoint == "off"
    path.write_text(to_yaml(cfg))
    assert load_config(path) == cfg


def test_config_is_frozen():
    cfg = load_config({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]


def test_resolved_yaml_round_trips(tmp_path):
    cfg = load_config({"name": "x"}, ["benchmark.seq_len=[4, 7]", "train.epochs=3"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.lrr=0.1"], "unknown key 'train.lrr' (did you mean 'train.lr'?)"),
        (["trian.lr=0.1"], "unknown key 'trian'"),
        (["train.epochs=five"], "train.epochs: expected an integer, got 'five'"),
        (["train.epochs=2.5"], "train.epochs: expected an integer"),
        (["train.epochs=true"], "train.epochs: expected an integer"),
        (["train.lr=0"], "train.lr: 0.0 is out of range; it must be > 0.0"),
        (["model.dropout=1.0"], "model.dropout: 1.0 is out of range; it must be < 1.0"),
        (
            ["model.type=transformer"],
            "model.type: 'transformer' is not allowed; choose one of lstm",
        ),
        (["train.lr_schedule=linear"], "choose one of exponential, cosine, step, none"),
        (["eval.initial=3"], "eval.initial: expected true or false"),
        (["benchmark.seq_len=[5]"], "benchmark.seq_len: expected int or [int, int]"),
        (["benchmark.seq_len=[0, 4]"], "benchmark.seq_len: 0 is out of range; it must be >= 1"),
        (["benchmark.seq_len=[9, 4]"], "benchmark.seq_len: [min, max] needs min <= max"),
        (["benchmark.n_classes=9"], "benchmark.n_classes (9) must be <= benchmark.n_features (8)"),
        (["benchmark.name=cifar"], "benchmark.name: unknown benchmark 'cifar'; choose one of"),
        (["strategy.name=magic"], "strategy.name: unknown strategy 'magic'; choose one of naive"),
        (["device=gpu"], "device: 'gpu' does not match the allowed form"),
        (["name=../escape"], "name: '../escape' does not match the allowed form"),
        (["train.grad_clip=-1"], "train.grad_clip: -1.0 is out of range; it must be > 0.0"),
        (["train=3"], "train: expected a mapping of keys"),
        (["seed.x=1"], "seed: expected an integer, got {'x': 1}"),
        (["lr"], "an override must be dotted.key=value"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config({}, overrides)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_override_below_a_value_is_refused():
    with pytest.raises(ConfigError, match="override seed.x: 'seed' is a value, not a section"):
        load_config({"seed": 1}, ["seed.x=1"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: .*line \d+"):
        load_config(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml is not a clstm experiment config: .*a list"):
        load_config(top)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"not a clstm experiment config \(a \.csv file\?\)"):
        load_config(csv)


def test_did_you_mean_and_the_owner_of_a_misplaced_key():
    with pytest.raises(
        ConfigError, match="unknown strategy 'repaly' \\(did you mean 'replay'\\?\\)"
    ):
        load_config({}, ["strategy.name=repaly"])
    with pytest.raises(ConfigError, match="unknown strategy 'EWC' \\(did you mean 'ewc'\\?\\)"):
        load_config({}, ["strategy.name=EWC"])
    with pytest.raises(ConfigError, match="did you mean 'seq_digits'"):
        load_config({}, ["benchmark.name=seqdigits"])
    with pytest.raises(
        ConfigError,
        match="strategy.mem_size is not an option of strategy 'naive'; it belongs to "
        "replay, gdumb, der",
    ):
        load_config({}, ["strategy.mem_size=10"])


def test_the_configuration_reference_page_matches_the_code():
    page = (ROOT / "docs" / "configuration.md").read_text()
    start = page.index("<!-- config-reference:start -->") + len("<!-- config-reference:start -->")
    end = page.index("<!-- config-reference:end -->")
    assert page[start:end].strip() == reference_markdown().strip(), (
        "docs/configuration.md is stale: regenerate it with "
        "`python -m clstm.config --update docs/configuration.md`"
    )
