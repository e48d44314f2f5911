"""The Lesson page's content: five short steps through Ma et al. (KDD 2018), each with what to look for and
the settings (RunConfigs) its buttons load into the Playground. Data only, so tests can check every step's
settings; pages/lesson.py lays it out."""

from __future__ import annotations

from dataclasses import dataclass

from .config import RunConfig

BASE = RunConfig(steps=1_500, log_every=50)  # about a minute per run on a small server


@dataclass(frozen=True)
class Step:
    title: str
    text: str  # two or three sentences: what to look for
    configs: tuple[tuple[str, RunConfig], ...]  # (button label, settings) — most steps have one
    link: str | None = None  # a page that continues the step


STEPS = (
    Step(
        "Identical tasks (p = 1)",
        "Both tasks are the same function of the input, up to noise. Expect the three models to end close "
        "together: when tasks agree, sharing one network costs nothing. MMoE's two gate rows look alike "
        "(task difference near 0): no task needs experts of its own.",
        (("Load p = 1 into the Playground", BASE.with_(correlation=1.0)),),
    ),
    Step(
        "Unrelated tasks (p = 0)",
        "Now the tasks' weight vectors are orthogonal, so their labels barely correlate. Shared-Bottom must serve "
        "both with one network; compare its final validation loss with MMoE's, and the gap with step 1's. "
        "MMoE's two gate rows now differ more than at p = 1.",
        (("Load p = 0 into the Playground", BASE.with_(correlation=0.0)),),
    ),
    Step(
        "Sweep p",
        "Train the same models at three correlations, one run each (load one, press Start, come back for the "
        "next). Then open Compare with the three runs: each model's loss grows as p falls, and the paper found "
        "Shared-Bottom's grows the most (Fig. 4).",
        tuple(
            (f"Load p = {p:g}", BASE.with_(correlation=p, models=("shared_bottom", "mmoe"))) for p in (0.0, 0.5, 0.9)
        ),
        link="compare",
    ),
    Step(
        "What the experts learned",
        "Train OMoE and MMoE longer on unrelated tasks. When the run ends, drag the replay slider under the gate "
        "heatmaps: find the step where MMoE's two rows start to differ, while OMoE's single gate gives both tasks "
        "the same row by construction. An orange cell is an expert a task leans on. Just above the heatmaps, the "
        "routing specialisation S says whether each task's gate leans on the experts that carry its own "
        "direction: 0 exactly for OMoE, small and usually above 0 for MMoE here (6 of 8 seeds at 2,000 steps).",
        (("Load the long p = 0 run", BASE.with_(correlation=0.0, models=("omoe", "mmoe"), steps=4_000)),),
    ),
    Step(
        "Trainability over seeds",
        "Eight random initialisations train at once; the band around each line is ±1 standard deviation over "
        "them. The paper (Fig. 5) found MMoE's final loss varies less from seed to seed than Shared-Bottom's: "
        "compare the bands' widths at the end, and the results table.",
        (("Load 8 seeds at p = 0.5", BASE.with_(correlation=0.5, seeds=8, models=("shared_bottom", "mmoe"))),),
        link="experiments",
    ),
)
