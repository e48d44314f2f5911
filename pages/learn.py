"""Learn: the four architectures with their formulas, a diagram of the model as the Playground is set now,
the paper's synthetic data, what the paper found, and where to read more."""

from __future__ import annotations

import streamlit as st

from mmoe_core.config import RunConfig
from mmoe_core.hygiene import plain
from mmoe_core.model_kinds import KINDS, MODEL_KINDS
from mmoe_core.models.zoo import build_spec, paper_count
from mmoe_core.views import config_summary, model_dot
from ui import keys
from ui.controls import build_config
from ui.server import ensure_app_frame, page_path

ensure_app_frame()
st.html("<style>.katex-display{overflow-x:auto;overflow-y:hidden;padding-bottom:2px}</style>")  # long formulas scroll
st.title("Learn")
st.markdown(
    "Multi-task learning trains one network for several related tasks. How much the tasks share, "
    "and who decides what they share, is what separates the models in this app."
)

SHOWN = list(KINDS)  # every model this library can train (mmoe_core/model_kinds.py)

st.header("The architectures" if len(SHOWN) > 4 else "The four architectures")
cols = st.columns(2)
for i, model in enumerate(SHOWN):
    formula, text = KINDS[model].formula, KINDS[model].about
    col = cols[i % 2]
    with col.container(border=True):
        st.subheader(MODEL_KINDS[model])
        st.latex(formula)
        st.markdown(text)
st.caption(
    "$x$: input; $f$, $f_i$: bottom networks or experts (ReLU layers); $g$: gate; $h^k$: tower of task "
    "$k$; $\\hat y_k$: the prediction for task $k$."
)

st.header("Gate options and diagnostics")
g1, g2 = st.columns(2)
with g1.container(border=True):
    st.subheader("Noisy top-k gates")
    st.latex(
        r"H(x)_i = (W_g x)_i + \varepsilon_i\,\operatorname{softplus}\big((W_{noise} x)_i\big),\quad "
        r"G(x) = \operatorname{softmax}\big(\operatorname{KeepTopK}(H(x), k)\big)"
    )
    st.markdown(
        "Shazeer et al. (2017): any gate can keep only its $k$ largest logits (the others get weight "
        r"exactly 0), with trainable Gaussian noise $\varepsilon \sim \mathcal N(0, 1)$ while training "
        "so that every expert gets tried. Settings **Top-k** (0 = all) and **Noisy gates**."
    )
with g2.container(border=True):
    st.subheader("Balancing loss")
    st.latex(
        r"L = w\,\mathrm{CV}\big(\textstyle\sum_{x} G(x)\big)^2 + "
        r"w\,\mathrm{CV}\big(\textstyle\sum_{x} P(x)\big)^2,\quad \mathrm{CV}^2 = \sigma^2/\mu^2"
    )
    st.markdown(
        "The importance of an expert is its summed gate weight over a batch; its load is the smooth "
        "chance that it stays in the top $k$ (Shazeer et al., App. A; only with noisy top-k). Both are "
        "0 for a perfectly balanced router and $n - 1$ for one that sends everything to one of $n$ "
        "experts. The weight $w$ is **Balance loss** (0 = off)."
    )
with st.container(border=True):
    st.subheader("Diagnostics: collapse and copies")
    st.latex(
        r"\text{load}_{k,i} = \overline{G^k(x)_i},\quad "
        r"\tilde H_k = \frac{-\sum_i \text{load}_{k,i}\log \text{load}_{k,i}}{\log n_k},\quad "
        r"\text{similarity} = \operatorname{mean}_{i<j} \cos(W_i, W_j)"
    )
    st.markdown(
        "The Playground measures each gated model on a fixed validation batch as it trains: the load of "
        r"each expert per task, its normalised entropy $\tilde H_k$ over the $n_k$ experts the task may "
        "use, the CV² of the importance, and how similar the experts' first-layer weights are. It warns "
        r"when routing **collapses** (one expert takes over 90% of a task's weight, or $\tilde H_k < 0.2$) "
        "and when the experts become **copies** (similarity above 0.95), since extra experts then add "
        "nothing."
    )

with st.container(border=True):
    st.subheader("What each expert learned: routing specialisation")
    st.latex(
        r"a_{ik} = \frac{\lVert W_i^\top w_k \rVert^2}{\sum_j \lVert W_i^\top w_j \rVert^2},\quad "
        r"S = \operatorname{mean}_k \Big(\sum_i g_{ik}\, a_{ik} - \operatorname{mean}_i a_{ik}\Big)"
    )
    st.markdown(
        "On the synthetic data each task's label depends on $x$ only through $w_k^T x$, so expert $i$ serves "
        "task $k$ to the degree its first-layer weights $W_i$ respond to the direction $w_k$: its alignment "
        "$a_{ik}$ (shares over the tasks). $S$ is how much more aligned each task's gate-weighted experts "
        "($g_{ik}$, the gate's mean weight on the validation batch) are than the average expert: above 0 when "
        "each gate picks the experts that carry its task. It is 0 exactly for one shared gate (OMoE) and for "
        "identical tasks (p = 1); the Playground draws it for every gated model."
    )

st.header("Task relationships through gradients")
with st.container(border=True):
    st.subheader("Gradient agreement")
    st.latex(r"\operatorname{agree}_{ij} = \cos\big(\nabla_{\theta_s} L_i,\ \nabla_{\theta_s} L_j\big)")
    st.markdown(
        "The cosine between two tasks' loss gradients on the weights they share, $\\theta_s$: the first layer "
        "of the expert bank (Shared-Bottom: of its bottom; PLE: of each level). Near 1 the tasks want the same "
        "change, near 0 unrelated ones, below 0 they conflict. The Playground measures it on each seed's first "
        "512 validation rows at every recorded point; it rises with the task correlation $p$, and MMoE's gates "
        "keep it lowest because they send each task's gradient to different experts."
    )
w1, w2 = st.columns(2)
with w1.container(border=True):
    st.subheader("Uncertainty weighting")
    st.latex(r"L = \sum_k \frac{L_k}{2\,e^{s_k}} + \frac{s_k}{2}")
    st.markdown(
        "Kendall et al. (2018): a learned log-variance $s_k$ per task (start −0.5) scales its loss; "
        "a noisy task learns a large $s_k$ and counts less. Setting **Loss weighting**."
    )
    st.subheader("PCGrad")
    st.latex(r"g_i \leftarrow g_i - \frac{\min(g_i \cdot g_j,\, 0)}{\lVert g_j \rVert^2}\, g_j")
    st.markdown(
        "Yu et al. (2020): on the shared weights, where two task gradients conflict, each loses its "
        "component along the other before they are summed; other weights get the plain sum."
    )
with w2.container(border=True):
    st.subheader("GradNorm")
    st.latex(
        r"G_k = w_k \lVert \nabla_W L_k \rVert,\quad "
        r"L_{grad} = \sum_k \big| G_k - \overline{G}\, r_k^{\alpha} \big|,\quad "
        r"r_k = \frac{L_k / L_k(0)}{\operatorname{mean}_j L_j / L_j(0)}"
    )
    st.markdown(
        "Chen et al. (2018): learned task weights $w_k$ (kept summing to the number of tasks) move so "
        "that tasks that lag behind get larger gradients on the last shared layer $W$; $\\alpha = 1.5$."
    )

st.header("Your model, as configured")
config, error = build_config()
if config is None:
    st.warning(plain(f"The Playground's settings are not valid yet ({error}); showing the defaults."))
    config = RunConfig()
st.caption(f"From the Playground's current settings: {plain(config_summary(config))}.")
if config.dataset != "synthetic":
    st.caption(
        "With real data, the input width d is the number of encoded feature columns and the tasks are "
        "the chosen targets; the diagram uses the Playground's d until a run has loaded the data."
    )
models = list(config.models)
if st.session_state.get(keys.LEARN_MODEL) not in models:
    st.session_state.pop(keys.LEARN_MODEL, None)  # the model shown before is no longer chosen
choice = (
    st.segmented_control(
        "Model",
        models,
        default="mmoe" if "mmoe" in models else models[0],
        format_func=MODEL_KINDS.get,
        key=keys.LEARN_MODEL,
    )
    or models[0]
)
spec = build_spec(choice, config)
# The facts first and the diagram across the whole width: beside them, an 8-expert diagram was scaled down
# until its labels were ~7 px at 1280×720.
facts, more = st.columns([1, 3])
with facts:
    st.metric(
        "Parameters (paper count)",
        f"{paper_count(spec):,}",
        help="Expert and tower weights, as the paper counts them in §5.1 (no biases or gate weights)",
    )
with more:
    st.markdown(
        f"- **{spec.n_experts}** {'expert' if spec.n_experts == 1 else 'experts'}, layers "
        f"{' → '.join(str(u) for u in (spec.input_dim, *spec.expert_units))}\n"
        f"- **{spec.n_gates}** {'gate' if spec.n_gates == 1 else 'gates'}\n"
        f"- **{spec.n_tasks}** towers, layers "
        f"{' → '.join(str(u) for u in (spec.expert_units[-1], *spec.tower_units, 1))}"
    )
    if page_path("playground"):
        st.page_link(page_path("playground"), label="Change it in the Playground", icon=":material/tune:")

st.graphviz_chart(model_dot(spec), width="stretch")

st.header("The paper's synthetic data (§3.2)")
st.markdown(
    "To control how related two regression tasks are, the paper draws two orthogonal unit vectors "
    "$u_1, u_2 \\in \\mathbb{R}^d$ and sets the tasks' weight vectors so their cosine is exactly $p$:"
)
st.latex(r"w_1 = c\,u_1, \qquad w_2 = c\left(p\,u_1 + \sqrt{1-p^2}\,u_2\right)")
st.latex(
    r"y_k = w_k^{\top} x + \sum_{i=1}^{m} \sin\!\left(\alpha_i\, w_k^{\top} x + \beta_i\right) + \epsilon_k,"
    r"\qquad x \sim \mathcal N(0, I_d)"
)
st.markdown(
    "The sine terms make the tasks non-linear, so the **label** correlation you measure is lower than "
    "$p$; the Playground shows both."
)

st.header("What the paper found")
st.markdown(
    "- **Task relatedness matters.** Every model does better when the tasks are more correlated, and "
    "Shared-Bottom suffers most as the correlation drops (Fig. 4).\n"
    "- **MMoE handles unrelated tasks better.** The gap between MMoE and OMoE grows as $p$ falls; with "
    "identical tasks ($p = 1$) the two are close, since one gate is enough.\n"
    "- **MMoE is easier to train.** Over repeated runs with random data and initialisation, MMoE's final "
    "losses are lower and vary less; Shared-Bottom's vary most (Fig. 5).\n"
    "- **It holds on real data.** On the UCI Census-income data and a large content-recommendation system, "
    "MMoE beats Shared-Bottom and OMoE at about the same number of parameters (§6).\n"
    "- **Gates specialise.** With separate gates, tasks learn to weight experts differently — the heatmaps in "
    "the Playground show it happening."
)

st.header("References")
st.markdown(
    "1. J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong, E. H. Chi. *Modeling Task Relationships in Multi-task "
    "Learning with Multi-gate Mixture-of-Experts.* KDD 2018. "
    "[doi:10.1145/3219819.3220007](https://doi.org/10.1145/3219819.3220007)\n"
    "2. N. Shazeer, A. Mirhoseini, K. Maziarz, A. Davis, Q. Le, G. Hinton, J. Dean. *Outrageously Large "
    "Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer.* ICLR 2017. "
    "[arXiv:1701.06538](https://arxiv.org/abs/1701.06538)\n"
    "3. H. Tang, J. Liu, M. Zhao, X. Gong. *Progressive Layered Extraction (PLE): A Novel Multi-Task "
    "Learning (MTL) Model for Personalized Recommendations.* RecSys 2020. "
    "[doi:10.1145/3383313.3412236](https://doi.org/10.1145/3383313.3412236)\n"
    "4. R. Caruana. *Multitask Learning.* Machine Learning 28, 41–75 (1997). "
    "[doi:10.1023/A:1007379629027](https://doi.org/10.1023/A:1007379629027)"
)
