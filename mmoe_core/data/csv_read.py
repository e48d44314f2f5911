"""Reading a CSV safely: size limits checked before parsing, encodings (UTF-8, UTF-8 with BOM, UTF-16) and the
delimiter detected, and the parsed table checked. Limits come from the environment (mmoe_core.settings):
MMOE_MAX_UPLOAD_MB, MMOE_MAX_ROWS, MMOE_MAX_COLUMNS.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from .. import settings

MIN_ROWS = 100  # fewer rows cannot fill train/validation/test splits with anything meaningful


def max_upload_bytes() -> int:
    return int(settings.get("MMOE_MAX_UPLOAD_MB") * 1e6)


def max_rows() -> int:
    return settings.get("MMOE_MAX_ROWS")


def max_columns() -> int:
    return settings.get("MMOE_MAX_COLUMNS")


# ---------------------------------------------------------------------------------------------- reading
def read_csv_bytes(data: bytes, name: str = "the file") -> pd.DataFrame:
    """Parse and check uploaded bytes; every rejection names the problem and what to do."""
    limit = max_upload_bytes()
    if len(data) > limit:
        raise ValueError(
            f"{name} is {len(data) / 1e6:.1f} MB, over this server's upload limit of {limit / 1e6:g} MB "
            "(MMOE_MAX_UPLOAD_MB); upload fewer rows or columns"
        )
    if not data.strip():
        raise ValueError(f"{name} is empty; upload a CSV with a header row and at least {MIN_ROWS} data rows")
    text = _decode(data)
    if "\x00" in text[:65_536]:
        raise ValueError(
            f"{name} is not CSV text (it looks like a binary file such as Excel, zip or parquet); "
            "save it as CSV (comma-separated, UTF-8) and upload that"
        )
    check_shape_before_parsing(text, name)
    try:
        df = pd.read_csv(io.StringIO(text), sep=_sniff_delimiter(text), skipinitialspace=True, low_memory=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name} has no columns; upload a CSV with a header row") from None
    except (pd.errors.ParserError, UnicodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "out of memory" in first:  # the parser's own allocation failed: a memory limit, not a bad file
            raise MemoryError(first) from None
        raise ValueError(
            f"{name} is not a well-formed CSV ({first}); check that every row has the same "
            "number of comma-separated fields"
        ) from None
    check_table(df, name)
    return df


def read_csv_path(path: str | Path, name: str | None = None) -> pd.DataFrame:
    """Read a CSV that a config names; the size limit is checked before the bytes are read. `name` is how
    messages call the file (default: its file name)."""
    p = Path(path)
    name = name or p.name
    if p.suffix.lower() != ".csv":
        raise ValueError(f"dataset={str(path)!r} does not end in .csv; give the path of a CSV file")
    if not p.is_file():
        raise ValueError(f"dataset={str(path)!r}: no such file; upload it again on the Data page or fix the path")
    size, limit = p.stat().st_size, max_upload_bytes()
    if size > limit:
        raise ValueError(
            f"{name} is {size / 1e6:.1f} MB, over this server's limit of {limit / 1e6:g} MB "
            "(MMOE_MAX_UPLOAD_MB); use fewer rows or columns"
        )
    return read_csv_bytes(p.read_bytes(), name)


def check_table(df: pd.DataFrame, name: str = "the table") -> None:
    """Shape limits shared by uploads and files on disk."""
    if df.shape[1] > max_columns():
        raise ValueError(
            f"{name} has {df.shape[1]} columns, over this server's limit of {max_columns()} "
            "(MMOE_MAX_COLUMNS); keep only the columns you need"
        )
    if df.shape[1] < 3:
        raise ValueError(
            f"{name} has {df.shape[1]} column(s); a multi-task table needs at least two target "
            "columns and one input column (is it really comma-separated?)"
        )
    if len(df) > max_rows():
        raise ValueError(
            f"{name} has {len(df):,} rows, over this server's limit of {max_rows():,} (MMOE_MAX_ROWS); upload a sample"
        )
    if len(df) < MIN_ROWS:
        raise ValueError(
            f"{name} has {len(df)} data rows; at least {MIN_ROWS} are needed to split it into "
            "training, validation and test sets"
        )


def check_shape_before_parsing(text: str, name: str = "the file") -> None:
    """Refuse a table by its line and header counts before pandas builds it: parsing is where memory goes
    (a Python object per text cell), so the limits must hold before it, not after."""
    lines = text.count("\n") + (not text.endswith("\n"))
    first = text[: text.find("\n")] if "\n" in text else text
    columns = max(first.count(d) for d in ",;\t|") + 1
    if columns > max_columns():
        raise ValueError(
            f"{name} has about {columns} columns, over this server's limit of {max_columns()} "
            "(MMOE_MAX_COLUMNS); keep only the columns you need"
        )
    if lines - 1 > max_rows():
        raise ValueError(
            f"{name} has about {lines - 1:,} rows, over this server's limit of {max_rows():,} (MMOE_MAX_ROWS); "
            "upload a sample"
        )


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), UTF-16 (Excel's "Unicode text"), else Latin-1."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or _looks_utf16(data[:4_096]):
        try:
            return data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else _utf16_order(data))
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: the checks below call it binary
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # spreadsheets on Windows; never fails, so the parser decides


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 text without a byte-order mark: ASCII letters with a zero byte beside every one."""
    if len(head) < 4:
        return False
    even, odd = head[0::2], head[1::2]
    return (odd.count(0) > 0.9 * len(odd) and even.count(0) == 0) or (
        even.count(0) > 0.9 * len(even) and odd.count(0) == 0
    )


def _utf16_order(data: bytes) -> str:
    return "utf-16-le" if data[1::2][:2048].count(0) > data[0::2][:2048].count(0) else "utf-16-be"


def _sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:65_536], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


# ---------------------------------------------------------------------------------------------- targets
