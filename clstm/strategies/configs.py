"""The config section of every strategy (``strategy.name`` selects one), defaults beside each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from clstm.config.schema import param


@dataclass(frozen=True)
class NaiveConfig:
    """Fine-tuning: no protection against forgetting (the lower bound of a comparison)."""

    name: Literal["naive"] = param("naive", "strategy")


@dataclass(frozen=True)
class JointConfig:
    """Offline training on all experiences at once (the usual upper bound)."""

    name: Literal["joint"] = param("joint", "strategy")


@dataclass(frozen=True)
class CumulativeConfig:
    """Each experience is trained on the union of all data seen so far."""

    name: Literal["cumulative"] = param("cumulative", "strategy")


@dataclass(frozen=True)
class ReplayConfig:
    """Experience replay from a fixed-size memory, mixed into every training batch."""

    name: Literal["replay"] = param("replay", "strategy")
    mem_size: int = param(200, "samples kept in memory, over all experiences", ge=1)
    policy: Literal["auto", "class_balanced", "experience_balanced", "reservoir"] = param(
        "auto",
        "which samples stay: equal share per class, equal share per experience, or reservoir "
        "sampling; auto: class_balanced for a class per sequence, else experience_balanced",
    )


@dataclass(frozen=True)
class EWCConfig:
    """Elastic weight consolidation: a Fisher-weighted quadratic penalty on moving weights."""

    name: Literal["ewc"] = param("ewc", "strategy")
    ewc_lambda: float = param(100.0, "penalty weight", ge=0.0)
    mode: Literal["separate", "online"] = param(
        "separate", "one penalty per experience, or online EWC (one decayed Fisher estimate)"
    )
    decay_factor: float = param(0.9, "online EWC: decay of the previous Fisher", gt=0.0, le=1.0)
    fisher: Literal["batch", "per_sample"] = param(
        "batch",
        "Fisher estimate: batch (Avalanche's: squared gradients of mini-batch mean losses, "
        "smaller by up to the batch size) or per_sample (the empirical Fisher, each sample's "
        "squared loss gradient, as Kirkpatrick et al. and Ehret et al.; one pass per sample)",
    )
    fisher_samples: int | None = param(
        None,
        "per_sample only: average over this many random training samples (Ehret et al.'s "
        "n_fisher); null: all of them",
        ge=1,
    )

    def __post_init__(self) -> None:
        if self.fisher_samples is not None and self.fisher != "per_sample":
            raise ValueError(
                "strategy.fisher_samples needs strategy.fisher: per_sample (the batch estimate "
                "reads every sample)"
            )


@dataclass(frozen=True)
class SIConfig:
    """Synaptic intelligence: path-integral importance of each weight."""

    name: Literal["si"] = param("si", "strategy")
    si_lambda: float = param(10.0, "penalty weight", ge=0.0)
    eps: float = param(1e-7, "damping of the importance denominator", gt=0.0)
    max_importance: float | None = param(
        0.001,
        "cap on each weight's importance (Avalanche's 0.001); null: no cap (Zenke et al., "
        "Ehret et al.)",
        gt=0.0,
    )
    nonnegative: bool = param(
        False, "clamp each experience's importance increment at 0 (Ehret et al.)"
    )
    task_loss_only: bool = param(
        False,
        "path integral of the task loss's gradient times the update it alone would make "
        "(Ehret et al.'s --si_task_loss_only)",
    )


@dataclass(frozen=True)
class MASConfig:
    """Memory-aware synapses: importance from the sensitivity of the output norm."""

    name: Literal["mas"] = param("mas", "strategy")
    lambda_reg: float = param(0.1, "penalty weight", ge=0.0)
    alpha: float = param(0.5, "update rate of the importance estimate", ge=0.0, le=1.0)


@dataclass(frozen=True)
class LwFConfig:
    """Learning without forgetting: distillation from the model after the previous experience."""

    name: Literal["lwf"] = param("lwf", "strategy")
    alpha: float = param(1.0, "weight of the distillation loss", ge=0.0)
    temperature: float = param(2.0, "softmax temperature of the distillation", gt=0.0)


@dataclass(frozen=True)
class GEMConfig:
    """Gradient episodic memory: project gradients so no stored experience's loss increases."""

    name: Literal["gem"] = param("gem", "strategy")
    patterns_per_exp: int = param(256, "samples kept per experience", ge=1)
    memory_strength: float = param(0.5, "margin gamma of the projection", ge=0.0)


@dataclass(frozen=True)
class AGEMConfig:
    """Averaged GEM: project onto one reference gradient from a random memory batch."""

    name: Literal["agem"] = param("agem", "strategy")
    patterns_per_exp: int = param(256, "samples kept per experience", ge=1)
    sample_size: int = param(256, "memory samples per reference gradient", ge=1)


@dataclass(frozen=True)
class GDumbConfig:
    """GDumb: keep a class-balanced memory; retrain from scratch on it at every experience."""

    name: Literal["gdumb"] = param("gdumb", "strategy")
    mem_size: int = param(200, "samples kept in memory", ge=1)


@dataclass(frozen=True)
class DERConfig:
    """Dark experience replay (DER++): replay stored samples with their logits and labels."""

    name: Literal["der"] = param("der", "strategy")
    mem_size: int = param(200, "samples kept in memory", ge=1)
    batch_size_mem: int | None = param(None, "memory batch size (null: train.batch_size)", ge=1)
    alpha: float = param(0.1, "weight of the logit-matching (MSE) term", ge=0.0)
    beta: float = param(0.5, "weight of the label term on memory samples", ge=0.0)


@dataclass(frozen=True)
class DERPPConfig:
    """DER++ as TSCIL (Qiao et al., KDD 2024) runs it: DER's logit matching and its label term on
    memory samples, each weighted 0.5 (``agents/der.py``)."""

    name: Literal["derpp"] = param("derpp", "strategy")
    mem_size: int = param(200, "samples kept in memory", ge=1)
    batch_size_mem: int | None = param(None, "memory batch size (null: train.batch_size)", ge=1)
    alpha: float = param(0.5, "weight of the logit-matching (MSE) term", ge=0.0)
    beta: float = param(0.5, "weight of the label term on memory samples", ge=0.0)


@dataclass(frozen=True)
class HerdingConfig:
    """Replay from exemplars chosen by iCaRL's herding, an equal share per class (TSCIL's
    "Herding")."""

    name: Literal["herding"] = param("herding", "strategy")
    mem_size: int = param(200, "sequences kept in memory, over all experiences", ge=1)
    batch_size_mem: int | None = param(
        None, "memory sequences per training batch (null: train.batch_size)", ge=1
    )


@dataclass(frozen=True)
class FastICARLConfig:
    """FastICARL (TSCIL): replay of the exemplars nearest their class mean, a one-hot BCE loss
    and a nearest-class-mean classifier."""

    name: Literal["fasticarl"] = param("fasticarl", "strategy")
    mem_size: int = param(200, "sequences kept in memory, over all experiences", ge=1)
    batch_size_mem: int | None = param(
        None, "memory sequences per training batch (null: train.batch_size)", ge=1
    )


@dataclass(frozen=True)
class CLOPSConfig:
    """CLOPS (TSCIL): a learnt importance weight per training sequence; replay of the most
    important ones (random retrieval, as TSCIL's experiments)."""

    name: Literal["clops"] = param("clops", "strategy")
    mem_size: int = param(200, "sequences kept in memory, over all experiences", ge=1)
    batch_size_mem: int | None = param(
        None, "memory sequences per training batch (null: train.batch_size)", ge=1
    )
    beta_lr: float = param(1e-4, "learning rate of the importance weights", gt=0.0)
    lambda_beta: float = param(1.0, "weight of the penalty keeping the weights near 1", ge=0.0)


@dataclass(frozen=True)
class ASERConfig:
    """ASER (TSCIL): replay whose memory is retrieved and replaced by KNN Shapley values in
    feature space."""

    name: Literal["aser"] = param("aser", "strategy")
    mem_size: int = param(200, "sequences kept in memory", ge=1)
    batch_size_mem: int | None = param(
        None, "memory sequences per training batch (null: train.batch_size)", ge=1
    )
    k: int = param(3, "neighbours of the KNN Shapley value (aser_k)", ge=1)
    n_per_class: int = param(
        4, "sequences per class drawn for candidates and evaluation sets (aser_n_smp_cls)", ge=1
    )


@dataclass(frozen=True)
class DT2WConfig:
    """DT2W (TSCIL): LwF plus soft-DTW distillation of the hidden-state sequences and prototype
    augmentation for earlier classes; defaults from TSCIL's ``main_config.py``."""

    name: Literal["dt2w"] = param("dt2w", "strategy")
    alpha: float = param(1.0, "weight of the output distillation (lambda_kd_lwf)", ge=0.0)
    temperature: float = param(2.0, "distillation temperature", gt=0.0)
    fmap: float = param(
        0.01,
        "weight of the soft-DTW distance between hidden-state sequences (lambda_kd_fmap)",
        ge=0.0,
    )
    gamma: float = param(1.0, "soft-DTW smoothing (0: plain DTW)", ge=0.0)
    proto_aug: float = param(
        100.0, "weight of the prototype-augmentation loss (lambda_protoAug)", ge=0.0
    )
    adaptive: bool = param(
        False, "weigh the task loss 1/(t+1) and the rest 1-1/(t+1) at experience t"
    )


@dataclass(frozen=True)
class HNETConfig:
    """Task-conditioned hypernetwork generating every weight of the recurrent network, with an
    output regulariser (Ehret et al. 2021); defaults: their permuted Copy Task run."""

    name: Literal["hnet"] = param("hnet", "strategy")
    beta: float = param(10.0, "weight of the output regulariser (--beta)", ge=0.0)
    chunk_size: int = param(2500, "weights generated per chunk (--nh_chmlp_chunk_size)", ge=1)
    hidden: tuple[int, ...] = param((50, 50), "the hypernetwork's hidden layers (--nh_hmlp_arch)")
    task_emb: int = param(32, "task embedding size (--nh_cond_emb_size)", ge=1)
    chunk_emb: int = param(32, "chunk embedding size (--nh_chunk_emb_size)", ge=1)


@dataclass(frozen=True)
class CoresetsConfig:
    """Replay of a random coreset per experience, trained to the previous model's outputs."""

    name: Literal["coresets"] = param("coresets", "strategy")
    coreset_size: int = param(100, "sequences kept per experience", ge=1)
    batch_size_mem: int | None = param(
        None,
        "replayed sequences per iteration, over all earlier experiences (null: train.batch_size)",
        ge=1,
    )
    alpha: float = param(1.0, "weight of the distillation term", ge=0.0)
    temperature: float = param(2.0, "distillation temperature", gt=0.0)


@dataclass(frozen=True)
class SeparateConfig:
    """One fresh model per experience, each experience evaluated with its own model."""

    name: Literal["separate"] = param("separate", "strategy")
