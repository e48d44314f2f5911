"""The registry of model kinds: one entry per kind says how the app names, colours and explains it and which
RunConfig fields shape it. Adding a kind is one entry here plus its constructor in models/zoo.py (decorated
with `@kind_spec`); validation, the CLI, the sidebar controls, the charts and the Learn page read this table.

No torch here: RunConfig imports it, and RunConfig must load before torch (the OpenMP policy).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelKind:
    label: str  # shown in the UI
    color: str  # its colour in every chart
    formula: str  # LaTeX, for the Learn page
    about: str  # one paragraph, Markdown, for the Learn page
    fields: tuple[str, ...] = ()  # RunConfig fields only this family reads: their controls show when it is chosen


KINDS: dict[str, ModelKind] = {
    "single_task": ModelKind(
        "Single-task",
        "#8C8C8C",  # grey: the no-sharing baseline
        r"\hat y_k = h^k\!\left(f^k(x)\right)",
        "No sharing: each task has its own bottom network and tower. The baseline that multi-task learning must beat.",
    ),
    "shared_bottom": ModelKind(
        "Shared-Bottom",
        "#4C78A8",  # blue
        r"\hat y_k = h^k\!\left(f(x)\right)",
        "One bottom network $f$ shared by every task, then a tower $h^k$ per task (Caruana, 1997). Cheap and "
        "strong when tasks agree; when they conflict, the shared bottom has to compromise.",
    ),
    "omoe": ModelKind(
        "OMoE",
        "#F58518",  # orange
        r"\begin{gathered}\hat y_k = h^k\!\Big(\sum_{i=1}^{n} g(x)_i\, f_i(x)\Big) \\ "
        r"g(x) = \operatorname{softmax}(W_g\, x)\end{gathered}",
        "A mixture of $n$ experts $f_i$ with **one** gate $g$ shared by all tasks (One-gate MoE). The mix "
        "depends on the input, but every task receives the same mix.",
    ),
    "mmoe": ModelKind(
        "MMoE",
        "#2CA02C",  # green: the paper's model
        r"\begin{gathered}\hat y_k = h^k\!\Big(\sum_{i=1}^{n} g^k(x)_i\, f_i(x)\Big) \\ "
        r"g^k(x) = \operatorname{softmax}(W_{g^k}\, x)\end{gathered}",
        "Multi-gate MoE (Ma et al., 2018): the same experts, but **each task has its own gate**, so tasks can "
        "share experts where they agree and use different ones where they do not. A gate adds only $n \\times d$ "
        "weights per task.",
    ),
    "cgc": ModelKind(  # Tang et al. 2020: shared + per-task experts, one masked gate per task
        "CGC",
        "#D62728",  # red: Tang et al. 2020's one-level model
        r"\hat y_k = h^k\!\Big(\sum_{i \in S \,\cup\, E_k} g^k(x)_i\, f_i(x)\Big)",
        "Customized Gate Control (Tang et al., 2020): shared experts $S$ plus experts $E_k$ of each task; task "
        "$k$'s gate mixes only the shared ones and its own, so tasks cannot crowd out each other's experts.",
        fields=("shared_experts", "task_experts"),
    ),
    "ple": ModelKind(  # CGC stacked in levels with a shared gate between them
        "PLE",
        "#9467BD",  # purple: CGC stacked in levels
        r"\text{CGC} \to \text{CGC} \to \cdots \to h^k",
        "Progressive Layered Extraction (Tang et al., 2020): CGC stacked in levels. Between levels a shared "
        "gate mixes every expert into the next level's shared input, separating shared and task-specific "
        "knowledge step by step.",
        fields=("shared_experts", "task_experts", "levels"),
    ),
}

MODEL_KINDS: dict[str, str] = {name: kind.label for name, kind in KINDS.items()}  # name -> label, in the paper's order


def kinds_using(field: str) -> tuple[str, ...]:
    """The kinds whose structure reads RunConfig `field` (e.g. shared_experts: CGC and PLE)."""
    return tuple(name for name, kind in KINDS.items() if field in kind.fields)


def family_fields() -> tuple[str, ...]:
    """Every field some kind reads on its own, in first-seen order (the sidebar's per-family controls)."""
    return tuple(dict.fromkeys(f for kind in KINDS.values() for f in kind.fields))
