"""Command line: the same Trainer and RunStore as the app, without a browser.

    python -m mmoe_core train --correlation 0.5 --models shared_bottom,omoe,mmoe --steps 2000 --json out.json
    python -m mmoe_core sweep --correlations 0.5,0.9,1.0 --seeds 16 --steps 3000 --json out.json

Every RunConfig field is a flag (`batch_size` -> `--batch-size`). A bad value exits with status 2 and one
line naming the flag and its allowed range. Runs are stored under MMOE_HOME, so the app's Runs page lists them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import fields
from typing import Any, Sequence

from .config import RunConfig, field_help
from .execute import execute_run
from .runs import RunStore

TRAIN_DEFAULTS: dict[str, Any] = {}
ALIASES = {"n_experts": ["--experts"]}  # short spellings users type
SWEEP_DEFAULTS: dict[str, Any] = {"independent_data": True}


class CliError(Exception):
    pass


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _flagify(message: str) -> str:
    """'batch_size=0 is out of range' -> '--batch-size 0 is out of range'."""
    return re.sub(r"^(\w+)=", lambda m: _flag(m.group(1)) + " ", message)


def _add_config_flags(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    for f in fields(RunConfig):
        if f.name in skip:
            continue
        if f.type == "bool":
            parser.add_argument(_flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                help=field_help(f.name))
        else:
            parser.add_argument(_flag(f.name), *ALIASES.get(f.name, []), dest=f.name, default=None,
                                metavar=f.name.upper(),
                                help=f"{field_help(f.name)} (default {_show(f.default)})")


def _show(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _parse_value(name: str, raw: str, kind: str) -> Any:
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise CliError(f"{_flag(name)} {raw!r} is not {'an integer' if kind == 'int' else 'a number'}") from None
    return raw


def config_from_args(args: argparse.Namespace, defaults: dict[str, Any]) -> RunConfig:
    values = dict(defaults)
    for f in fields(RunConfig):
        raw = getattr(args, f.name, None)
        if raw is not None:
            values[f.name] = raw if f.type == "bool" else _parse_value(f.name, raw, f.type)
    try:
        return RunConfig(**values)
    except ValueError as exc:
        raise CliError(_flagify(str(exc))) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mmoe_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the chosen models side by side on one data set")
    _add_config_flags(train)
    sweep = sub.add_parser("sweep", help="correlations x models x seeds, each seed with its own data by default")
    sweep.add_argument("--correlations", default="0.5,0.9,1.0", help="comma-separated p values")
    sweep.add_argument("--fixed-data", action="store_true", help="one data draw for all seeds (only init varies)")
    _add_config_flags(sweep, skip=("correlation", "independent_data"))
    for p in (train, sweep):
        p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
        p.add_argument("--home", metavar="DIR", help="run store folder (default $MMOE_HOME or ~/.mmoe_playground)")
        p.add_argument("--no-store", action="store_true", help="keep nothing: use a temporary run store")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _store(args: argparse.Namespace) -> RunStore:
    if args.no_store:
        return RunStore(tempfile.mkdtemp(prefix="mmoe_cli_"))
    return RunStore(args.home)


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=quiet, leave=False)


def _run_one(store: RunStore, config: RunConfig, desc: str, quiet: bool, label: str = "") -> tuple[str, dict]:
    run_id = store.create_run(config, label=label, status="running")  # never visible to a job queue
    bar = _progress(config.steps, desc, quiet)
    summary = execute_run(store, run_id, on_step=lambda s: bar.update(1))
    bar.close()
    if "error" in summary:
        raise CliError(f"run {run_id} failed: {summary['error']}")
    return run_id, summary


def cmd_train(args: argparse.Namespace) -> dict:
    config = config_from_args(args, TRAIN_DEFAULTS)
    store = _store(args)
    t0 = time.perf_counter()
    run_id, summary = _run_one(store, config, "train", args.quiet)
    seconds = time.perf_counter() - t0
    out = {"config": config.to_dict(), "run_id": run_id, "label_correlation": summary["label_correlation"],
           "device": summary["device"], "seconds": round(seconds, 3),
           "rows_per_s": round(summary["steps"] * config.batch_size / seconds, 1), "models": summary["models"]}
    print(_table(out["models"], f"p = {config.correlation:g}, label correlation {out['label_correlation']:.3f}, "
                 f"{out['rows_per_s']:,.0f} rows/s, {seconds:.1f} s, run {run_id}"))
    return out


def cmd_sweep(args: argparse.Namespace) -> dict:
    try:
        correlations = [float(p) for p in args.correlations.split(",") if p.strip()]
    except ValueError:
        raise CliError(f"--correlations {args.correlations!r} must be comma-separated numbers in [-1, 1]") from None
    if not correlations:
        raise CliError("--correlations is empty; give values in [-1, 1] such as 0.5,0.9,1.0")
    base = config_from_args(args, {**SWEEP_DEFAULTS, "independent_data": not args.fixed_data})
    configs = []
    for p in correlations:
        try:
            configs.append(base.with_(correlation=p))
        except ValueError as exc:
            raise CliError(_flagify(str(exc)).replace("--correlation ", "--correlations ")) from None
    store = _store(args)
    t0 = time.perf_counter()
    results = []
    for config in configs:
        run_id, summary = _run_one(store, config, f"p={config.correlation:g}", args.quiet, label="sweep")
        for name, m in summary["models"].items():
            per_seed = m.get("per_seed") or [{"seed_index": 0, "test_loss": m.get("test_loss"),
                                               "test_loss_mean": m.get("test_loss_mean")}]
            for s in per_seed:
                results.append({"correlation": config.correlation, "model": name, "seed": base.seed + s["seed_index"],
                                "data_seed": base.data_seed + (s["seed_index"] if base.independent_data else 0),
                                "status": m["status"], "test_loss": s["test_loss"],
                                "test_loss_mean": s["test_loss_mean"], "run_id": run_id})
    seconds = time.perf_counter() - t0
    out = {"config": {**base.to_dict(), "correlations": correlations}, "seconds": round(seconds, 3),
           "model_rows_per_s": round(len(configs) * len(base.models) * base.seeds * base.steps * base.batch_size
                                     / seconds, 1),
           "results": results}
    print(_sweep_table(results, seconds))
    return out


def _table(models: dict, title: str) -> str:
    lines = [title, f"{'model':<14} {'status':<9} {'params':>7} {'test loss per task':<24} {'mean':>9} {'seconds':>8}"]
    for name, m in models.items():
        per_task = ", ".join("nan" if v is None else f"{v:.4f}" for v in m.get("test_loss", []))
        mean = m.get("test_loss_mean")
        lines.append(f"{name:<14} {m['status']:<9} {m['params']:>7} {per_task:<24} "
                     f"{'nan' if mean is None else f'{mean:.4f}':>9} {m['seconds']:>8.2f}")
        if m.get("message"):
            lines.append(f"  {m['message']}")
    return "\n".join(lines)


def _sweep_table(results: list[dict], seconds: float) -> str:
    import pandas as pd

    df = pd.DataFrame(results)
    stats = df.groupby(["correlation", "model"], sort=False)["test_loss_mean"].agg(["mean", "std", "min", "max", "count"])
    return f"{stats.to_string(float_format=lambda v: f'{v:.4f}')}\n{seconds:.1f} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out = cmd_train(args) if args.command == "train" else cmd_sweep(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0
