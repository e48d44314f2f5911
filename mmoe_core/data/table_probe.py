"""Read and check a CSV in a child process with a memory cap, returning only small JSON.

Parsing a table is where an upload costs memory (a Python object per text cell, then the table's copies): a
legal 50 MB upload of ~200 text columns reached 5.7 GB in the web server. Here the web server never holds the
table: a child process parses it under a memory limit (MMOE_PARSE_MEMORY_MB: RLIMIT_DATA, its heap and
anonymous memory; the address space would count shared libraries too),
answers with what the Data page shows (shape, first rows, column summary, the checked choice) and exits, so its
memory goes back to the system whatever the file was. A child that runs out of memory or time is a clear
ValueError, never a crashed server.

    python -c "$_BOOT" < request.json   (what `probe` and `check` run; see _BOOT)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .. import settings

TIMEOUT_S = 300.0  # a table at the row and column limits parses in seconds; minutes on a machine under load 20
HEAD_ROWS = 6  # rows of the table the Data page shows
_THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # small address space


# The child needs pandas, not torch: it registers mmoe_core.data as a bare package so that importing
# csv_table does not run the package's __init__ (which imports every data source, and with them torch: +2 s
# of start-up and +300 MB of address space under the cap).
_BOOT = (
    "import sys, types; import mmoe_core; pkg = types.ModuleType('mmoe_core.data'); pkg.__path__ = [{folder!r}]; "
    "sys.modules['mmoe_core.data'] = pkg; from mmoe_core.data.table_probe import main; main()"
)


_OUT_OF_MEMORY = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "failed to map segment")


def memory_cap_bytes() -> int:
    return int(settings.get("MMOE_PARSE_MEMORY_MB") * 1e6)


# ---------------------------------------------------------------------------------------------- in the child
def _probe(path: str, name: str) -> dict[str, Any]:
    from .csv_read import read_csv_path
    from .csv_table import column_summary, detect_kind, target_problem

    df = read_csv_path(path, name)
    kinds = {}
    for col in df.columns:
        kinds[str(col)] = detect_kind(df[col]) if target_problem(df[col]) is None else "not usable"
    head = df.head(HEAD_ROWS)
    return {
        "rows": len(df),
        "columns": [str(c) for c in df.columns],
        "head": json.loads(head.to_json(orient="split", index=False, default_handler=str)),
        "summary": json.loads(column_summary(df).to_json(orient="records", default_handler=str)),
        "kinds": kinds,
    }


def _check(
    path: str, name: str, targets: list[str], features: list[str], kinds: list[str], data_seed: int
) -> dict[str, Any]:
    import dataclasses

    from .csv_read import read_csv_path
    from .csv_table import check_choice

    choice = check_choice(read_csv_path(path, name), targets, features, kinds, data_seed=data_seed)
    out = dataclasses.asdict(choice)
    out["label_correlation"] = (
        None if out["label_correlation"] != out["label_correlation"] else out["label_correlation"]
    )
    return out


def _serve(request: dict[str, Any]) -> dict[str, Any]:
    try:
        if request["op"] == "probe":
            return {"ok": _probe(request["path"], request["name"])}
        args = {k: request[k] for k in ("targets", "features", "kinds", "data_seed")}
        return {"ok": _check(request["path"], request["name"], **args)}
    except ValueError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": "memory"}


def _limit_memory() -> None:  # pragma: no cover - runs in the child before exec
    import resource

    cap = memory_cap_bytes()
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


# ---------------------------------------------------------------------------------------------- in the server
def _run(request: dict[str, Any], name: str) -> dict[str, Any]:
    cap_mb = memory_cap_bytes() / 1e6
    too_big = (
        f"checking {name} needed more than this server's {cap_mb:,.0f} MB for parsing (MMOE_PARSE_MEMORY_MB); "
        "upload fewer rows or columns, or leave out text columns with many values"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _BOOT.format(folder=str(Path(__file__).resolve().parent))],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            cwd=str(Path(__file__).resolve().parents[2]),
            env={**os.environ, **_THREADS_ENV},
            preexec_fn=_limit_memory if sys.platform != "win32" else None,
        )
    except subprocess.TimeoutExpired:
        raise ValueError(f"checking {name} took over {TIMEOUT_S:.0f} s; upload a smaller table") from None
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        answer = {}
    if answer.get("error") == "memory":
        raise ValueError(too_big)
    if "error" in answer:
        raise ValueError(answer["error"])
    if "ok" not in answer:
        if proc.returncode < 0 or any(sign in proc.stderr for sign in _OUT_OF_MEMORY):
            raise ValueError(too_big)
        print(f"mmoe table probe failed ({proc.returncode}): {proc.stderr[-2000:]}", file=sys.stderr, flush=True)
        raise ValueError(f"{name} could not be checked (the checking process ended unexpectedly); upload it again")
    return answer["ok"]


_SEEN: dict[tuple[str, int, int], dict[str, Any]] = {}  # (path, size, mtime) -> probe answer: parse each file once


def _key(path: str | Path) -> tuple[str, int, int]:
    st = Path(path).stat()
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def remember(path: str | Path, answer: dict[str, Any]) -> None:
    """Keep a probe answer for `path` (an upload renamed into place after its check), so it is not parsed twice."""
    if len(_SEEN) >= 32:
        _SEEN.pop(next(iter(_SEEN)))
    _SEEN[_key(path)] = answer


def probe(path: str | Path, name: str = "the table") -> dict[str, Any]:
    """{"rows", "columns", "head" (pandas 'split' JSON), "summary" (column_summary records), "kinds"} of a CSV."""
    key = _key(path)
    if key not in _SEEN:
        remember(path, _run({"op": "probe", "path": str(path), "name": name}, name))
    return _SEEN[key]


def check(
    path: str | Path,
    targets: list[str],
    features: list[str],
    kinds: list[str],
    data_seed: int = 0,
    name: str = "the table",
) -> dict[str, Any]:
    """csv_table.check_choice of a CSV, as a dict of TableChoice's fields (raises its ValueError)."""
    request = {"op": "check", "path": str(path), "name": name, "targets": list(targets), "features": list(features)}
    return _run({**request, "kinds": list(kinds), "data_seed": int(data_seed)}, name)


def main() -> None:
    request = json.loads(sys.stdin.read())
    print(json.dumps(_serve(request), default=str))


if __name__ == "__main__":
    main()
