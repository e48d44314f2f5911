"""Command line: the same Trainer and RunStore as the app, without a browser.

    python -m mmoe_core train --correlation 0.5 --models shared_bottom,omoe,mmoe --steps 2000 --json out.json
    python -m mmoe_core sweep --correlations 0.5,0.9,1.0 --seeds 32 --lrs 1e-4,1e-3,1e-2 --json out.json

Every RunConfig field is a flag (`batch_size` -> `--batch-size`). A bad value exits with status 2 and one
line naming the flag and its allowed range. Runs are stored under MMOE_HOME, so the app's Runs page lists them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import compare
from .config import RunConfig, field_help
from .config import _integer as parse_count
from .runs import RunStore
from .runtime.backends import resolve_backend, run_on_ray
from .runtime.execute import execute_run
from .store_faults import StoreError

TRAIN_DEFAULTS: dict[str, Any] = {}
ALIASES = {"n_experts": ["--experts"]}  # short spellings users type


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
            parser.add_argument(
                _flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=field_help(f.name)
            )
        else:
            parser.add_argument(
                _flag(f.name),
                *ALIASES.get(f.name, []),
                dest=f.name,
                default=None,
                metavar=f.name.upper(),
                help=f"{field_help(f.name)} (default {_show(f.default)})",
            )


def _show(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _parse_value(name: str, raw: str, kind: str) -> Any:
    try:
        if kind == "int":
            return parse_count(raw)  # 2e3 is 2000, as in a URL
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


class _PresetNames:
    """The study presets' names for --preset, read when a value is checked or help is shown: the presets live in
    mmoe_core.studies, which imports pandas (~0.3 s) that `train` never needs (issue #18)."""

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    @staticmethod
    def _names() -> list[str]:
        from .studies.study import PRESETS

        return sorted(PRESETS)


def build_parser() -> argparse.ArgumentParser:
    prog = "mmoe" if Path(sys.argv[0]).name == "mmoe" else "python -m mmoe_core"  # the console script or -m
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the chosen models side by side on one data set")
    _add_config_flags(train, skip=("sweep",))  # a p-sweep is the Playground's; the CLI sweeps with `sweep`
    sweep = sub.add_parser("sweep", help="correlations x models x seeds, each seed with its own data by default")
    sweep.add_argument("--correlations", default=None, help="comma-separated p values (default: the preset's)")
    sweep.add_argument(
        "--lrs",
        default=None,
        help="comma-separated Adam learning rates, one run each (default: the preset's grid, else just --lr; the "
        "paper tried 1e-4,1e-3,1e-2)",
    )
    sweep.add_argument(
        "--row-sizes",
        default=None,
        help="comma-separated training-set sizes, one run each (a regime map; default: the preset's, else --rows)",
    )
    sweep.add_argument(
        "--preset",
        choices=_PresetNames(),
        metavar="NAME",
        default="default",
        help="starting settings that the other flags override, one of %(choices)s (quick: 8 seeds, default: 32, paper: 200)",
    )
    sweep.add_argument("--fixed-data", action="store_true", help="one data draw for all seeds (only init varies)")
    sweep.add_argument(
        "--separate-runs",
        action="store_true",
        help="one run per correlation instead of every correlation in one batched run (the same numbers)",
    )
    _add_config_flags(sweep, skip=("correlation", "independent_data", "sweep"))
    for p in (train, sweep):
        p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
        p.add_argument("--home", metavar="DIR", help="run store folder (default $MMOE_HOME or ~/.mmoe_playground)")
        p.add_argument("--no-store", action="store_true", help="keep nothing: use a temporary run store")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument(
            "--backend",
            help="where runs train: local (this process, the default) or ray (one Ray "
            "task per run, all at once; default $MMOE_BACKEND)",
        )
        p.add_argument(
            "--ray-address",
            metavar="ADDR",
            help="Ray cluster to join, e.g. head-node:6379 (default "
            "$MMOE_RAY_ADDRESS; none: start Ray on this machine)",
        )
    return parser


def _store(args: argparse.Namespace) -> RunStore:
    """The run store, opened before any training: a --home that is a file, read-only or on a full disk is one
    line naming the folder and the fix. --no-store: a temporary folder that main() removes at exit."""
    try:
        return RunStore(args.scratch if args.no_store else args.home)
    except StoreError as exc:
        raise CliError(exc.detail.replace("MMOE_HOME", "--home / MMOE_HOME", 1)) from None


def _check_json_path(path: str | None) -> None:
    """--json is checked before training, so a typo never costs a finished run its results."""
    if not path:
        return
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise CliError(f"--json {path!r} is a folder; give a file name such as {target / 'results.json'}")
    if not folder.is_dir():
        raise CliError(f"--json {path!r}: the folder {str(folder)!r} does not exist; create it or choose another")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise CliError(f"--json {path!r} cannot be written here (permission denied); choose a writable folder")


class _Interrupt:
    """SIGINT/SIGTERM: the first one stops the run at its next step (stored as cancelled, with its curves and
    test metrics so far); a second one stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.run_id: str | None = None
        self.store: RunStore | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def requested(self) -> bool:
        return self.signum is not None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self)

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)  # 130 for Ctrl-C, 143 for SIGTERM, as shells report them


INTERRUPT = _Interrupt()


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=quiet, leave=False)


def _run_one(store: RunStore, config: RunConfig, desc: str, quiet: bool, label: str = "") -> tuple[str, dict]:
    run_id = store.create_run(config, label=label, status="running")  # never visible to a job queue
    INTERRUPT.run_id, INTERRUPT.store = run_id, store
    bar = _progress(config.steps, desc, quiet)
    summary = execute_run(store, run_id, on_step=lambda s: bar.update(1), interrupted=INTERRUPT.requested)
    bar.close()
    if "error" in summary:
        raise CliError(f"run {run_id} failed: {summary['error']}")
    return run_id, summary


def _run_all(
    store: RunStore, configs: list[RunConfig], descs: list[str], args: argparse.Namespace, label: str = ""
) -> list[tuple[str, dict]]:
    """local: one run after another in this process; ray: every run at once as a Ray task (mmoe_core.runtime.backends),
    their points written into the same run store as they arrive."""
    try:
        backend = resolve_backend(args.backend)
    except ValueError as exc:
        raise CliError(_flagify(str(exc))) from None
    if backend == "local":
        done = []
        for config, desc in zip(configs, descs):
            if INTERRUPT.requested():  # a sweep stops between runs too
                break
            done.append(_run_one(store, config, desc, args.quiet, label=label))
        return done
    bar = _progress(sum(c.steps for c in configs), "ray", args.quiet)
    try:
        return run_on_ray(
            store,
            configs,
            label=label,
            address=args.ray_address,
            on_progress=lambda done, total: bar.update(done - bar.n),
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    finally:
        bar.close()


def cmd_train(args: argparse.Namespace) -> dict:
    config = config_from_args(args, TRAIN_DEFAULTS)
    store = _store(args)
    t0 = time.perf_counter()
    [(run_id, summary)] = _run_all(store, [config], ["train"], args)
    seconds = time.perf_counter() - t0
    out = {
        "status": "cancelled" if INTERRUPT.requested() else "done",
        "config": config.to_dict(),
        "run_id": run_id,
        "label_correlation": summary["label_correlation"],
        "device": summary["device"],
        "seconds": round(seconds, 3),
        "rows_per_s": round(summary["steps"] * config.batch_size / seconds, 1),
        "models": summary["models"],
    }
    if INTERRUPT.requested():
        return out  # main() prints the one line
    data = f"p = {config.correlation:g}" if config.dataset == "synthetic" else f"data {config.dataset}"
    print(
        _table(
            out["models"],
            f"{data}, label correlation {out['label_correlation']:.3f}, "
            f"{out['rows_per_s']:,.0f} rows/s, {seconds:.1f} s, run {run_id}",
            summary.get("task_kinds") or (),
        )
    )
    return out


def _table(models: dict, title: str, task_kinds: Sequence[str] = ()) -> str:
    lines = [title, f"{'model':<14} {'status':<9} {'params':>7} {'test loss per task':<24} {'mean':>9} {'seconds':>8}"]
    for name, m in models.items():
        per_task = ", ".join("nan" if v is None else f"{v:.4f}" for v in m.get("test_loss", []))
        mean = m.get("test_loss_mean")
        lines.append(
            f"{name:<14} {m['status']:<9} {m['params']:>7} {per_task:<24} "
            f"{'nan' if mean is None else f'{mean:.4f}':>9} {m['seconds']:>8.2f}"
        )
        if m.get("test_auc"):  # binary tasks (Census-Income, CSV): AUC is the number to read
            auc = ", ".join("-" if v is None else f"{v:.4f}" for v in m["test_auc"])
            lines.append(f"  test AUC per task: {auc} (mean of binary tasks {m['test_auc_mean']:.4f})")
        if m.get("message"):
            lines.append(f"  {m['message']}")
    verdict = compare.verdict_text({"models": models, "task_kinds": task_kinds})
    if verdict:
        lines.append(verdict)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    INTERRUPT.__init__()
    if args.backend in (None, "local") and threading.current_thread() is threading.main_thread():
        INTERRUPT.install()  # Ray's driver keeps its own Ctrl-C handling
    with tempfile.TemporaryDirectory(prefix="mmoe_cli_") if args.no_store else contextlib.nullcontext() as scratch:
        args.scratch = scratch  # --no-store: the whole store lives here and is removed on every way out
        try:
            _check_json_path(args.json)
            if args.command == "train":
                out = cmd_train(args)
            else:
                from .cli_sweep import cmd_sweep  # the studies' tables need pandas; `train` does not

                out = cmd_sweep(args)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, and say what is kept
            if INTERRUPT.run_id and INTERRUPT.store:
                INTERRUPT.store.finish_run(INTERRUPT.run_id, "cancelled", error="interrupted", only_if=("running",))
            print(f"interrupted: run {INTERRUPT.run_id or '-'} stored as cancelled, no JSON written", file=sys.stderr)
            return INTERRUPT.exit_code
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=2)
        if INTERRUPT.requested():
            name = signal.Signals(INTERRUPT.signum).name
            where = f"; results in {args.json}" if args.json else ""
            kept = "discarded (--no-store)" if args.no_store else "stored as cancelled with its curves"
            print(f"cancelled by {name}: run {out.get('run_id') or out.get('study_id')} {kept}{where}", file=sys.stderr)
            return INTERRUPT.exit_code
    return 0
