"""The only place that touches Streamlit internals, for the three things its public API does not offer: this
script run's session id, which sessions are still connected, and turning off the old `pages/`-folder mode.

Each function raises StreamlitInternalsChanged, naming the installed Streamlit version, if the internal it
relies on moved. Callers never treat that as "no sessions": the reaper then drops nothing (users' queued runs
are kept) and logs the message; tests/test_st_compat.py fails loudly on such an upgrade.
"""

from __future__ import annotations

import streamlit as st


class StreamlitInternalsChanged(RuntimeError):
    pass


def _changed(what: str, exc: BaseException) -> StreamlitInternalsChanged:
    return StreamlitInternalsChanged(
        f"Streamlit {st.__version__} no longer offers {what} ({type(exc).__name__}: {exc}); ui/st_compat.py must be "
        "updated for this version, or install a Streamlit version that requirements.txt allows"
    )


def script_session_id() -> str | None:
    """The browser session running this script, or None outside a script run (a thread, a bare test)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError as exc:
        raise _changed("streamlit.runtime.scriptrunner.get_script_run_ctx", exc) from exc
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx else None


def _runtime():
    try:
        from streamlit.runtime import Runtime
    except ImportError as exc:
        raise _changed("streamlit.runtime.Runtime", exc) from exc
    return Runtime.instance() if Runtime.exists() else None


def active_session_ids() -> set[str] | None:
    """Ids of the sessions the server still knows (a recently disconnected one counts until Streamlit forgets
    it); None when no Streamlit server runs in this process."""
    runtime = _runtime()
    if runtime is None:
        return None
    try:
        return {info.session.id for info in runtime._session_mgr.list_sessions()}
    except AttributeError as exc:
        raise _changed("Runtime._session_mgr.list_sessions()", exc) from exc


def is_active_session(session_id: str) -> bool:
    """Whether a session is still connected. Raises (never False) when it cannot tell."""
    runtime = _runtime()
    if runtime is None:
        return False
    try:
        return bool(runtime.is_active_session(session_id))
    except AttributeError as exc:
        raise _changed("Runtime.is_active_session()", exc) from exc


def pages_folder_mode_was_on() -> bool:
    """Streamlit decides per process whether `pages/` is an old-style folder of pages; until app.py has called
    st.navigation once, a first visit straight to /runs would run that page alone, without the app's frame.
    Switch the mode off; True means the caller must rerun through app.py."""
    try:
        from streamlit.runtime.pages_manager import PagesManager

        on = PagesManager.uses_pages_directory
    except (ImportError, AttributeError) as exc:
        raise _changed("PagesManager.uses_pages_directory", exc) from exc
    if on:
        PagesManager.uses_pages_directory = False
    return bool(on)
