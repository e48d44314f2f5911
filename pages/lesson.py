"""Lesson: the paper's story in five short steps for a class or a projector. Each step says what to look for
and has a button that loads its settings into the Playground (ui.controls.load_into_controls); the student
presses Start there. One step per screen, so it reads at 1280×720 and on a phone."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from mmoe_core.config import RunConfig
from ui import keys
from ui.controls import load_into_controls
from ui.server import ensure_app_frame, page_path

STEP = "lesson_step"  # the step shown (widget key)
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
        "the same row by construction. An orange cell is an expert a task leans on.",
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
# Large type for a projector; the step's buttons stack on a phone (Streamlit stacks columns under 640 px).
STYLE = """<style>
.st-key-lesson p{font-size:1.25rem;line-height:1.55}
.st-key-lesson h2{font-size:1.9rem}
</style>"""


def load(config: RunConfig) -> None:
    """Button callback: the step's settings into the Playground's controls, then go there (below)."""
    load_into_controls(config)
    st.session_state.pop(keys.RUN_ID, None)  # show the new settings, not the last run (it stays on Runs)
    st.session_state["_lesson_go"] = True


ensure_app_frame()
st.html(STYLE)
st.title("Lesson: when does MMoE help?")
st.markdown(
    "Five short steps through Ma et al. (KDD 2018). Each loads its settings into the Playground; press **Start** "
    "there, watch, and come back for the next step."
)
labels = [f"{i + 1}. {s.title}" for i, s in enumerate(STEPS)]
if st.session_state.get(STEP) not in range(len(STEPS)):
    st.session_state[STEP] = 0
st.segmented_control(
    "Step",
    list(range(len(STEPS))),
    key=STEP,
    format_func=lambda i: labels[i],
    label_visibility="collapsed",
    required=True,
)
i = st.session_state[STEP]
step = STEPS[i]
with st.container(border=True, key="lesson"):
    st.header(labels[i], anchor=False)
    st.markdown(step.text)
    cols = st.columns(len(step.configs))
    for j, (col, (label, config)) in enumerate(zip(cols, step.configs)):
        col.button(
            label,
            key=f"lesson_load_{i}_{j}",
            type="primary",
            icon=":material/science:",
            on_click=load,
            args=(config,),
            width="stretch",
        )
    if step.link and page_path(step.link):
        st.page_link(page_path(step.link), label=f"Then open {step.link.capitalize()}", icon=":material/arrow_forward:")


def move(by: int) -> None:
    st.session_state[STEP] = min(max(st.session_state[STEP] + by, 0), len(STEPS) - 1)


back, _, forward = st.columns([1, 2, 1])
back.button("Back", key="lesson_back", on_click=move, args=(-1,), disabled=i == 0, width="stretch")
forward.button("Next", key="lesson_next", on_click=move, args=(1,), disabled=i == len(STEPS) - 1, width="stretch")
if st.session_state.pop("_lesson_go", False) and page_path("playground"):
    st.switch_page(page_path("playground"))
