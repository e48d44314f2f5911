"""User text made harmless where the app shows or writes it.

Everything a browser sends (file and column names, labels, URL values) is someone's text, not the app's markup:
- on a page it is plain text: `plain` escapes what Streamlit's markdown would turn into links, images, emphasis,
  icons (`:material/...:`) or formulas (`$...$`), for messages and labels that mix the app's words with it;
- in a CSV it is data: `csv_safe` neutralises cells a spreadsheet would run as a formula (the OWASP
  CSV-injection rule: a text cell starting with = + - @ tab or CR gets a leading apostrophe). Numbers are
  numbers: -1.5 stays -1.5;
- in Graphviz DOT source it is a quoted string: `dot_label`.
"""

from __future__ import annotations

import re

import pandas as pd

# What turns text into markup mid-line: links and images ([...](...)), code, emphasis, formulas ($), strikes, and
# Streamlit's :icon: / :color[...] directives. HTML is never rendered (no unsafe_allow_html), and intraword
# underscores (batch_size) are not emphasis, so messages keep reading as written.
_MARKDOWN = re.compile(r"([\\`*\[\]$~]|:(?=[A-Za-z]))")
_LINE_START = re.compile(r"^(\s*(?:\d+)?)([-+=.)#>])")  # lists, headings, quotes: only where a line starts
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(text: object) -> str:
    """`text` escaped so Streamlit's markdown shows it character for character (st.markdown, st.error, labels)."""
    escaped = _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would evaluate, quoted as text; every other value unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and column names cannot run as spreadsheet formulas (numeric columns untouched)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def dot_label(text: object) -> str:
    """Text for inside a double-quoted DOT string: no way out of the quotes, no markup."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
