"""The ``copy`` benchmark: the Copy Task family of Ehret et al. (ICLR 2021), generated offline.

Ehret, Henning, Cervera, Meulemans, von Oswald & Grewe, "Continual learning in recurrent neural
networks", ICLR 2021; their code: repository ``mariacer/cl_in_rnns``,
``data/timeseries/copy_data.py`` and ``sequential/copy/``. A sequence shows a random binary
pattern of ``pattern_len`` steps x ``width`` bits (then, in the padded variant, zero steps up to
``input_len``), a stop bit on its own channel, and then ``pattern_len`` silent steps in which
the model must output a transformation of the pattern, bit by bit (``per_step_bits`` targets;
accuracy = the fraction of output bits reproduced, :mod:`clstm.targets`). Every task sees the
same input sequences (their code generates each task's data with the same seed); tasks differ in
the transformation, drawn per task from ``seed``:

- ``permuted`` (Permuted Copy, ``i = p = 5``): the pattern with its steps in a fixed random order
  (output step ``k`` = pattern step ``perm[k]``);
- ``padded`` (Padded Copy, ``i = 25``, ``p = 5``): the same, with the pattern followed by
  ``input_len - pattern_len`` zero steps before the stop bit (a longer memory span);
- ``pattern`` (Pattern Manipulation): the pattern XOR-ed with ``xor_iter`` differently
  time-permuted copies of itself (their ``--permute_xor --permute_xor_separate``).

Sizes follow their ``generate_copy_tasks``: 100,000 training and 1,000 test sequences per task.
By default (``draw: clstm``) the random draws are clstm's own (NumPy's ``default_rng`` seeded
with ``seed``): the data are the same on every run and machine but not those of their code.
``draw: ehret2021`` makes their code's draws instead, with NumPy's legacy ``RandomState`` as their
``CopyTask`` and ``generate_copy_tasks`` do (``seed`` is their ``--data_random_seed``, 42 unless
given): every input value is ``rand() > 0.5`` from ``RandomState(seed)``, an array of
``(steps, n, width)`` in time-major order, the training sequences first, then the test sequences,
the steps after the pattern zeroed; task ``t``'s permutations come from
``RandomState(r_t).permutation``, ``r_t`` the ``t``-th ``randint(1000)`` of another
``RandomState(seed)`` (for ``pattern``: ``xor_iter`` permutations drawn one after another).
With ``seed: 42`` these are the tasks behind their published numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import MAX_SEED, StreamOptions, check_fits_in_memory, param

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

TARGET = "per_step_bits"  # clstm.targets: W bits per step, at the output steps only
VARIANTS = {  # variant -> (input_len, pattern_len) of the paper
    "permuted": (5, 5),
    "padded": (25, 5),
    "pattern": (5, 5),
}


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``copy`` benchmark."""

    name: Literal["copy"] = param("copy", "benchmark")
    variant: Literal["permuted", "padded", "pattern"] = param(
        "permuted",
        "permuted: output steps permuted per task (p = i = 5); padded: pattern then zeros "
        "(i = 25, p = 5); pattern: XOR with xor_iter permuted copies",
    )
    n_experiences: int = param(5, "tasks", ge=1)
    n_train: int = param(100_000, "training sequences per task (Ehret et al.: 100,000)", ge=1)
    n_test: int = param(1_000, "test sequences per task (Ehret et al.: 1,000)", ge=1)
    width: int = param(7, "bits per step of the pattern (Ehret et al.: 7)", ge=1)
    input_len: int | None = param(
        None, "steps before the stop bit (null: the variant's, 5 or 25)", ge=1
    )
    pattern_len: int | None = param(
        None, "steps of the pattern, <= input_len (null: 5 for padded, else input_len)", ge=1
    )
    xor_iter: int = param(1, "pattern: permuted copies XOR-ed into the target (r)", ge=1)
    seed: int = param(0, "data seed (inputs and each task's permutations)", ge=0, le=MAX_SEED)
    draw: Literal["clstm", "ehret2021"] = param(
        "clstm",
        "how the data are drawn from seed: clstm's generator, or ehret2021: the draws of Ehret "
        "et al.'s code (with seed 42, their tasks)",
    )
    standardize: bool = param(False, "must stay off: the inputs are bits")

    def __post_init__(self) -> None:
        self._settle_scenario(("task", "domain"))
        if self.standardize:
            raise ValueError("benchmark.standardize: the copy task's inputs are bits; set false")
        if self.validation:
            raise ValueError("benchmark.validation: the copy task has no validation split; set 0")
        if self.xor_iter != 1 and self.variant != "pattern":
            raise ValueError("benchmark.xor_iter applies to variant: pattern only")
        if self.pattern_steps > self.input_steps:
            raise ValueError(
                f"benchmark.pattern_len ({self.pattern_steps}) must not exceed input_len "
                f"({self.input_steps})"
            )
        steps = self.input_steps + 1 + self.pattern_steps
        check_fits_in_memory(
            (self.n_train + self.n_test) * steps * (self.width * (1 + self.n_experiences) + 2) * 4,
            f"the copy task's sequences (benchmark.n_train {self.n_train} + n_test {self.n_test} "
            f"per task, n_experiences {self.n_experiences}, width {self.width}, {steps} steps)",
            "make benchmark.n_train, n_test, n_experiences or width smaller",
        )

    @property
    def input_steps(self) -> int:
        return self.input_len or VARIANTS[self.variant][0]

    @property
    def pattern_steps(self) -> int:
        if self.pattern_len is not None:
            return self.pattern_len
        return VARIANTS["padded"][1] if self.variant == "padded" else self.input_steps


def inputs(config: Config, n: int, stream: int) -> np.ndarray:
    """``(n, T, width + 1)``: patterns, zero padding, the stop bit (last channel), silence."""
    i, p, w = config.input_steps, config.pattern_steps, config.width
    rng = np.random.default_rng([config.seed, stream])
    x = np.zeros((n, i + 1 + p, w + 1), dtype=np.float32)
    x[:, :p, :w] = rng.integers(0, 2, size=(n, p, w), dtype=np.int8)
    x[:, i, w] = 1.0  # stop bit
    return x


def ehret2021_inputs(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The training and test inputs of ``draw: ehret2021`` (see the module docstring): their
    values, in :func:`inputs`' layout."""
    i, p, w = config.input_steps, config.pattern_steps, config.width
    state = np.random.RandomState(config.seed)
    split = []
    for n in (config.n_train, config.n_test):
        bits = state.rand(i + 1 + p, n, w)[:p] > 0.5  # (p, n, w): the pattern's steps
        x = np.zeros((n, i + 1 + p, w + 1), dtype=np.float32)
        x[:, :p, :w] = bits.transpose(1, 0, 2)
        x[:, i, w] = 1.0  # stop bit
        split.append(x)
    return split[0], split[1]


def permutations(config: Config, task: int) -> list[np.ndarray]:
    """Task ``task``'s step permutations of the pattern (``xor_iter`` for variant ``pattern``)."""
    count = config.xor_iter if config.variant == "pattern" else 1
    if config.draw == "ehret2021":
        seeds = np.random.RandomState(config.seed).randint(1000, size=task + 1)
        rng = np.random.RandomState(int(seeds[task]))
    else:
        rng = np.random.default_rng([config.seed, 2, task])
    return [rng.permutation(config.pattern_steps) for _ in range(count)]


def targets(config: Config, x: np.ndarray, task: int) -> np.ndarray:
    """``(n, T, width)``: the task's output pattern in the last ``pattern_len`` steps, NO_TARGET
    elsewhere."""
    from clstm.targets import NO_TARGET

    p, w = config.pattern_steps, config.width
    pattern = x[:, :p, :w].astype(bool)  # (n, p, w)
    perms = permutations(config, task)
    if config.variant == "pattern":  # Ehret et al.: pattern XOR P_1(pattern) XOR ... P_r(pattern)
        out = pattern.copy()
        for perm in perms:
            out ^= pattern[:, perm]
    else:
        out = pattern[:, perms[0]]
    y = np.full((*x.shape[:2], w), NO_TARGET, dtype=np.float32)
    y[:, -p:] = out
    return y


def build(config: Config) -> SequenceBenchmark:
    """The stream: one experience per task, the same inputs, the task's own outputs."""
    from clstm.data.stepwise import target_benchmark

    if config.draw == "ehret2021":
        x_train, x_test = ehret2021_inputs(config)
    else:
        x_train, x_test = inputs(config, config.n_train, 0), inputs(config, config.n_test, 1)
    lengths = (np.full(len(x_train), x_train.shape[1]), np.full(len(x_test), x_test.shape[1]))
    train, test = [], []
    for task in range(config.n_experiences):
        train.append((x_train, lengths[0], targets(config, x_train, task)))
        test.append((x_test, lengths[1], targets(config, x_test, task)))
    return target_benchmark(
        train,
        test,
        target="per_step_bits",
        n_outputs=config.width,
        names=[f"task{t}" for t in range(config.n_experiences)],
        scenario=config.scenario,
        tag=repr(config),
    )
