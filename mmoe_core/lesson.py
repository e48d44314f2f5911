"""The Lesson page's content: five short steps through Ma et al. (KDD 2018), each with what to look for and
the settings (RunConfigs) its buttons load into the Playground. Data only, so tests can check every step's
settings; pages/lesson.py lays it out."""

from __future__ import annotations

from dataclasses import dataclass

from .config import RunConfig
from .p_sweep import DEFAULT_PS, DEFAULT_SEEDS

BASE = RunConfig(steps=1_500, log_every=50)  # about a minute per run on a small server
# the Playground's p-sweep as its switch sets it: two minutes on a 2-core server
SWEEP = BASE.with_(sweep=DEFAULT_PS, seeds=DEFAULT_SEEDS, independent_data=True)


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
        "One press trains every model at six correlations, four seeds each, with each seed's data the same at "
        "every p. Watch the left panel: every model's loss rises as p falls, and the paper found Shared-Bottom's "
        "rises the most (Fig. 4); at this small budget the seeds' bands overlap, so read the trend, not one point. "
        "The middle and right panels show why MMoE copes: its two gates differ more, and lean on the experts that "
        "carry their own task, the less related the tasks are.",
        (("Load the sweep", SWEEP),),
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
