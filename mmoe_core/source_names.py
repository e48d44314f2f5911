"""How a RunConfig names its data, as plain strings (no loading here: mmoe_core.data.sources does that).

A browser names data by *source id*, never by path (DESIGN.md, "Trust"):

    synthetic | census1 | census2      built in
    sample:<file>.csv                  a table shipped in sample_data/, by file name
    upload:<16 hex>                    a browser upload stored under MMOE_HOME/uploads/, by an opaque random id

A path ending in .csv is a fourth kind that only the command line may use: its user owns the machine. The
grammar lives apart from the loaders so config.py can check a name without importing pandas or torch.
"""

from __future__ import annotations

import re
from pathlib import PurePath

BUILTIN = ("synthetic", "census1", "census2", "census1_strict", "census2_strict")
SAMPLE_PREFIX = "sample:"
UPLOAD_PREFIX = "upload:"
KINDS = ("builtin", "sample", "upload", "path")
_SAMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.csv$")  # a file name, never a path
UPLOAD_ID = re.compile(r"^[0-9a-f]{16}$")  # secrets.token_hex(8): random, says nothing about the bytes


def dataset_kind(name: str) -> str:
    """'builtin', 'sample', 'upload' or 'path'; ValueError naming the allowed forms for anything else."""
    if name in BUILTIN:
        return "builtin"
    if name.startswith(SAMPLE_PREFIX):
        if _SAMPLE_NAME.match(name[len(SAMPLE_PREFIX) :]) and ".." not in name:
            return "sample"
        raise ValueError(f"dataset={name!r} is not a sample table name; use sample:<file>.csv from sample_data/")
    if name.startswith(UPLOAD_PREFIX):
        if UPLOAD_ID.match(name[len(UPLOAD_PREFIX) :]):
            return "upload"
        raise ValueError(f"dataset={name!r} is not an upload id; upload:<id> comes from the Data page")
    if name.lower().endswith(".csv"):
        return "path"
    raise ValueError(
        f"dataset={name!r} is unknown; choose one of {', '.join(BUILTIN)}, sample:<file>.csv, upload:<id> "
        "or (command line only) the path of a .csv file"
    )


def is_table(name: str) -> bool:
    """A CSV source: its tasks come from the config's `targets`."""
    return dataset_kind(name) in ("sample", "upload", "path")


def upload_id(name: str) -> str | None:
    """The id of an upload source, else None."""
    return name[len(UPLOAD_PREFIX) :] if dataset_kind(name) == "upload" else None


def sample_name(name: str) -> str:
    return SAMPLE_PREFIX + name


def display_name(name: str) -> str:
    """How pages name a source: never a server path (a command-line run shows its file name only)."""
    try:
        kind = dataset_kind(name)
    except ValueError:
        return "(unknown data)"
    if kind == "sample":
        return name[len(SAMPLE_PREFIX) :]
    if kind == "upload":
        return "an uploaded table"
    if kind == "path":
        return PurePath(name.replace("\\", "/")).name
    return name


def browser_refusal(name: str) -> str | None:
    """Why a browser may not name this source (None when it may, as far as the name goes; an upload must
    also belong to the browser's session, which only the web layer knows)."""
    try:
        kind = dataset_kind(name)
    except ValueError as exc:
        return str(exc)
    if kind == "path":
        return (
            "a link or page cannot name a file on the server; choose synthetic, census1, census2, a sample "
            "table or your own upload on the Data page"
        )
    return None
