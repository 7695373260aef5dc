"""Builders of the strategies: ``build(config, **common)`` -> an Avalanche strategy.

``common`` holds the keyword arguments every Avalanche strategy takes (model, optimizer,
criterion, batch sizes, epochs, device, plugins, evaluator), made by
:func:`clstm.strategies.compose.build_strategy`. Avalanche is imported only here, when a strategy
is built.
"""

from __future__ import annotations

import dataclasses

from clstm.strategies.configs import (
    AGEMConfig,
    ASERConfig,
    CLOPSConfig,
    CoresetsConfig,
    DERConfig,
    DERPPConfig,
    DT2WConfig,
    EWCConfig,
    FastICARLConfig,
    GDumbConfig,
    GEMConfig,
    HerdingConfig,
    HNETConfig,
    LwFConfig,
    MASConfig,
    ReplayConfig,
    SeparateConfig,
    SIConfig,
)


def naive(config, **common):
    from clstm.strategies.lean import LeanNaive as Naive

    return Naive(**common)


def joint(config, **common):
    from clstm.strategies.joint import JointTrainingOnce

    return JointTrainingOnce(**common)


def cumulative(config, **common):
    from clstm.strategies.lean import LeanCumulative as Cumulative

    return Cumulative(**common)


def with_plugin(plugin, common, before: type | None = None):
    """``Naive`` with ``plugin`` added last, or just before the first plugin of type ``before``."""
    from clstm.strategies.lean import LeanNaive as Naive

    plugins = list(common["plugins"])
    at = next((i for i, p in enumerate(plugins) if before and isinstance(p, before)), len(plugins))
    plugins.insert(at, plugin)
    return Naive(**{**common, "plugins": plugins})


def replay(config: ReplayConfig, **common):
    from avalanche.training.storage_policy import (
        ClassBalancedBuffer,
        ExperienceBalancedBuffer,
        ReservoirSamplingBuffer,
    )

    from clstm.plugins.replay import QuietReplayPlugin

    if config.policy == "class_balanced":
        policy = ClassBalancedBuffer(max_size=config.mem_size, adaptive_size=True)
    elif config.policy == "experience_balanced":
        policy = ExperienceBalancedBuffer(max_size=config.mem_size, adaptive_size=True)
    else:
        policy = ReservoirSamplingBuffer(max_size=config.mem_size)
    plugin = QuietReplayPlugin(mem_size=config.mem_size, storage_policy=policy)
    return with_plugin(plugin, common)


def ewc(config: EWCConfig, **common):
    from clstm.plugins.ewc import RecurrentEWCPlugin

    plugin = RecurrentEWCPlugin(
        ewc_lambda=config.ewc_lambda,
        mode=config.mode,
        decay_factor=config.decay_factor if config.mode == "online" else None,
        fisher=config.fisher,
        fisher_samples=config.fisher_samples,
    )
    return with_plugin(plugin, common)


def si(config: SIConfig, **common):
    from clstm.plugins.orthogonal import OrthogonalRecurrentPlugin
    from clstm.plugins.si import TorchSIPlugin

    options = {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}
    # before the orthogonal regulariser, so that SI sees the task loss alone and takes its
    # gradient (task_loss_only) without a second backward pass (clstm.plugins.si)
    return with_plugin(TorchSIPlugin(**options), common, before=OrthogonalRecurrentPlugin)


def mas(config: MASConfig, **common):
    from clstm.strategies.lean import LeanMAS as MAS

    return MAS(lambda_reg=config.lambda_reg, alpha=config.alpha, **common)


def lwf(config: LwFConfig, **common):
    from clstm.plugins.lwf import LwFPlugin

    return with_plugin(LwFPlugin(alpha=config.alpha, temperature=config.temperature), common)


def gem(config: GEMConfig, **common):
    from clstm.strategies.lean import LeanGEM as GEM

    return GEM(
        patterns_per_exp=config.patterns_per_exp, memory_strength=config.memory_strength, **common
    )


def agem(config: AGEMConfig, **common):
    from clstm.strategies.lean import LeanAGEM as AGEM

    return AGEM(patterns_per_exp=config.patterns_per_exp, sample_size=config.sample_size, **common)


def gdumb(config: GDumbConfig, **common):
    from clstm.plugins.replay import QuietGDumbPlugin

    return with_plugin(QuietGDumbPlugin(mem_size=config.mem_size), common)


def der(config: DERConfig | DERPPConfig, **common):
    import torch
    from avalanche.training import DER

    from clstm.plugins.der import DERMaskedLogitsPlugin, TargetDER

    if not isinstance(common["criterion"], torch.nn.CrossEntropyLoss):  # not a class per sequence
        return TargetDER(
            mem_size=config.mem_size,
            batch_size_mem=config.batch_size_mem,
            alpha=config.alpha,
            beta=config.beta,
            **common,
        )
    common = {**common, "plugins": [*common["plugins"], DERMaskedLogitsPlugin()]}
    return DER(
        mem_size=config.mem_size,
        batch_size_mem=config.batch_size_mem,
        alpha=config.alpha,
        beta=config.beta,
        **common,
    )


def herding(config: HerdingConfig, **common):
    from clstm.plugins.herding import HerdingBuffer
    from clstm.plugins.replay import QuietReplayPlugin

    plugin = QuietReplayPlugin(
        mem_size=config.mem_size,
        batch_size_mem=config.batch_size_mem,
        storage_policy=HerdingBuffer(config.mem_size),
    )
    return with_plugin(plugin, common)


def fasticarl(config: FastICARLConfig, **common):
    from clstm.plugins.continual import ContinualEvalPlugin
    from clstm.plugins.fasticarl import FastICARLPlugin, NCMHead, OneHotBCE

    model = common["model"]
    if not hasattr(model, "head"):
        raise TypeError(f"fasticarl needs a model with one `head`; {type(model).__name__} has none")
    model.head = NCMHead(model.head)  # the same parameters: the optimizer's hold them still
    plugin = FastICARLPlugin(mem_size=config.mem_size, batch_size_mem=config.batch_size_mem)
    # before continual evaluation: its boundary values use the class means of that boundary
    return with_plugin(plugin, {**common, "criterion": OneHotBCE()}, before=ContinualEvalPlugin)


def aser(config: ASERConfig, **common):
    from clstm.plugins.aser import ASERPlugin

    options = {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}
    return with_plugin(ASERPlugin(**options), common)


def clops(config: CLOPSConfig, **common):
    from clstm.plugins.clops import CLOPSPlugin

    options = {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}
    return with_plugin(CLOPSPlugin(**options), common)


def dt2w(config: DT2WConfig, **common):
    from clstm.plugins.dt2w import DT2WPlugin

    options = {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}
    return with_plugin(DT2WPlugin(**options), common)


def hnet(config: HNETConfig, **common):
    import sys

    from clstm.plugins.hnet import HNETPlugin, HyperModel

    model, optimizer = common["model"], common["optimizer"]
    n_tasks = len(getattr(model, "heads", [])) or 1
    hyper = HyperModel(model, n_tasks, chunk_size=config.chunk_size, hidden=tuple(config.hidden),
                       task_emb=config.task_emb, chunk_emb=config.chunk_emb)  # fmt: skip
    print(f"clstm: note: {hyper.summary()}", file=sys.stderr)
    # the optimizer the run made, over the hypernetwork's parameters instead of the model's
    common = {**common, "model": hyper,
              "optimizer": type(optimizer)(hyper.parameters(), **optimizer.defaults)}  # fmt: skip
    return with_plugin(HNETPlugin(config.beta), common)


def coresets(config: CoresetsConfig, **common):
    from clstm.plugins.coresets import CoresetDistillationPlugin

    options = {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}
    return with_plugin(CoresetDistillationPlugin(**options), common)


def separate(config: SeparateConfig, **common):
    from clstm.plugins.separate import SeparateModelsPlugin

    return with_plugin(SeparateModelsPlugin(), common)
