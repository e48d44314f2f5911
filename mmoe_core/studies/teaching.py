"""How often the Playground's defaults show what the app is built to teach, measured on seeds never used to choose
them (issue 16). The defaults (RunConfig's, and the quick study preset's training size) were picked from the regime
map by the rule pre-registered in docs/REPRODUCTION.md; the counts below are from the held-out study that followed
(master seed HELD_OUT_SEED, seeds HELD_OUT_SEED + r, each its own data draw), not from the map.

    python -m mmoe_core sweep --preset regime --correlations 0.5 --seed 7200000 --data-seed 7200000 --seeds 16
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RunConfig

HELD_OUT_SEED = 7_200_000


@dataclass(frozen=True)
class Evidence:
    """MMoE's paired wins against a baseline on held-out seeds at RunConfig's defaults (any seed)."""

    wins: int
    seeds: int
    other: str  # the baseline's label
    study: str  # where the numbers come from

    def sentence(self) -> str:
        return (
            f"At these settings MMoE beats {self.other} on {self.wins} of {self.seeds} fresh seeds "
            f"({self.wins / self.seeds:.0%}; {self.study}): expect the other result now and then."
        )


def at_defaults(config: RunConfig) -> bool:
    """Whether `config` is the measured setting: RunConfig's defaults except for the seeds, the recording and the
    device (which change neither the data's distribution nor the training), with MMoE and Shared-Bottom in it."""
    plain = RunConfig()
    same = config.with_(
        seed=plain.seed,
        data_seed=plain.data_seed,
        seeds=plain.seeds,
        log_every=plain.log_every,
        device=plain.device,
        models=plain.models,
    )
    return same == plain and {"mmoe", "shared_bottom"} <= set(config.models)


def teaching_evidence(config: RunConfig) -> str | None:
    """The measured sentence for the Playground, or None when the settings are not the measured ones."""
    return TEACHING_EVIDENCE.sentence() if at_defaults(config) else None
