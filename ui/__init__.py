"""Streamlit helpers shared by app.py and pages/: server state (server), sidebar controls built from
RunConfig (controls), the view of one run (run_view), and the one adapter over Streamlit internals (st_compat).
"""
