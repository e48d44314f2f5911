"""Lesson: the paper's story in five short steps for a class or a projector. Each step says what to look for
and has a button that loads its settings into the Playground (ui.controls.load_into_controls); the student
presses Start there. One step per screen, so it reads at 1280×720 and on a phone."""

from __future__ import annotations

import streamlit as st

from mmoe_core.config import RunConfig
from mmoe_core.lesson import STEPS
from ui import keys
from ui.controls import load_into_controls
from ui.server import ensure_app_frame, page_path

STEP = keys.LESSON_STEP
# Large type for a projector; the step's buttons stack on a phone (Streamlit stacks columns under 640 px).
STYLE = """<style>
.st-key-lesson p{font-size:1.25rem;line-height:1.55}
.st-key-lesson h2{font-size:1.9rem}
</style>"""


def load(config: RunConfig) -> None:
    """Button callback: the step's settings into the Playground's controls, then go there (below)."""
    load_into_controls(config)
    st.session_state.pop(keys.RUN_ID, None)  # show the new settings, not the last run (it stays on Runs)
    st.session_state[keys.LESSON_GO] = True


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
if st.session_state.pop(keys.LESSON_GO, False) and page_path("playground"):
    st.switch_page(page_path("playground"))
