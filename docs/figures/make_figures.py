"""Static PNGs and markdown tables of a stored study, for docs/REPRODUCTION.md.

    BROWSER_PATH=/usr/bin/chromium python docs/figures/make_figures.py --home DIR --study ID --prefix default

Uses the same functions as the Experiments page (mmoe_core.studies.study, mmoe_core.studies.plots); plotly writes the
PNGs through kaleido (`pip install kaleido`), which drives a headless Chrome/Chromium (BROWSER_PATH).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mmoe_core.config import MODEL_KINDS
from mmoe_core.runs import RunStore
from mmoe_core.studies.claims import check_claims
from mmoe_core.studies.plots import curves_figure, label_correlation_figure, trainability_figure
from mmoe_core.studies.study import (
    curves,
    final_losses,
    gap_table,
    label_correlations,
    load_study,
    run_results,
    study_runs,
    summary_table,
)

ROOT = Path(__file__).resolve().parents[2]

WIDTH, HEIGHT = 1100, 420


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs the optional `tabulate`)."""

    def cell(col: str, v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if col in ("mean", "sd", "min", "max", "se") else f"{v:g}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += [
        "| " + " | ".join(cell(c, v) for c, v in zip(df.columns, row)) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, help="run store folder holding the study")
    parser.add_argument("--study", required=True, help="study id (12 hex characters)")
    parser.add_argument("--prefix", required=True, help="file name prefix, e.g. default or paper")
    parser.add_argument("--out", default=str(Path(__file__).parent), help="folder for the PNGs")
    parser.add_argument("--lr", type=float, default=None, help="learning rate to draw (default: the first)")
    args = parser.parse_args()

    store = RunStore(args.home)
    study = load_study(store, args.study)
    runs = study_runs(store, args.study)
    lr = args.lr if args.lr is not None else study.lrs[0]
    per_seed = pd.concat([run_results(store, r)[0] for r in runs.to_dict("records")], ignore_index=True)
    final = final_losses(store, runs)
    out = Path(args.out)
    opts = {"width": WIDTH, "height": HEIGHT, "scale": 1}
    white = {"template": "plotly_white"}  # the app draws on Streamlit's theme; a PNG needs its own
    curves_figure(curves(per_seed[per_seed["lr"] == lr]), study.correlations, steps=study.base.steps).update_layout(
        white
    ).write_image(out / f"{args.prefix}_fig4_average.png", **opts)
    trainability_figure(final[final["lr"] == lr], study.correlations, log_y=True).update_layout(white).write_image(
        out / f"{args.prefix}_fig5_trainability.png", **opts
    )
    grid = sorted({round(0.1 * i, 1) for i in range(11)} | set(study.correlations))
    measured = runs[["correlation", "label_correlation"]].rename(columns={"correlation": "p"})
    label_correlation_figure(
        label_correlations(study.base, grid, draws=min(study.base.seeds, 32)), measured
    ).update_layout(white).write_image(
        out / f"{args.prefix}_fig2_label_correlation.png", width=800, height=HEIGHT, scale=1
    )

    summary, gaps = summary_table(final), gap_table(final)
    s = summary.assign(model=summary["model"].map(MODEL_KINDS))
    print(markdown(s))
    print()
    print(markdown(gaps))
    print()
    for c in check_claims(final, lr):
        print(f"- {c.claim}: **{c.verdict}** ({c.detail})")


if __name__ == "__main__":
    main()
