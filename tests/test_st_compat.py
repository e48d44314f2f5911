"""The Streamlit internals the app relies on (ui/st_compat.py) still exist in the installed Streamlit. If this
fails after an upgrade, update ui/st_compat.py: the app must never guess that sessions are gone."""

import streamlit as st
from streamlit.testing.v1 import AppTest

from ui import st_compat


def test_the_internals_exist_in_this_streamlit():
    from streamlit.runtime import Runtime
    from streamlit.runtime.pages_manager import PagesManager

    assert hasattr(PagesManager, "uses_pages_directory"), st.__version__
    assert callable(getattr(Runtime, "is_active_session", None)), st.__version__
    assert st_compat.active_session_ids() is None  # no server in this process, and no error


def test_a_script_run_has_a_session_id():
    def page():
        import streamlit as st

        from ui import st_compat

        st.text(st_compat.script_session_id() or "none")

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert at.text[0].value not in ("", "none")


def test_a_moved_internal_is_reported_with_the_version(monkeypatch):
    import streamlit.runtime.pages_manager as pm

    monkeypatch.delattr(pm.PagesManager, "uses_pages_directory")
    try:
        st_compat.pages_folder_mode_was_on()
    except st_compat.StreamlitInternalsChanged as exc:
        assert f"Streamlit {st.__version__}" in str(exc) and "ui/st_compat.py" in str(exc)
    else:
        raise AssertionError("a moved internal must raise, never pass silently")
