"""What this browser session may do: which runs it owns (owner secrets it holds), which uploads it may train
on, whether it typed the admin token, and the optional password in front of the whole app.

Owner secrets live in session state and in the owner's link (`?run=ID&key=SECRET`, `?study=ID&key=SECRET`);
the run store holds only their hash (mmoe_core.access). A link without `key` is a view link: read-only.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from mmoe_core import access, settings
from mmoe_core.config import RunConfig
from mmoe_core.runs import RUN_ID
from mmoe_core.source_names import browser_refusal, dataset_kind
from mmoe_core.studies.study import LABEL_PREFIX

from . import keys
from .server import get_store

READ_ONLY = (
    "Read-only: only the browser that started this {what} (or its owner link, with `key=` in the address) can "
    "stop or delete it."
)


# ---------------------------------------------------------------------------------------------- owner secrets
def _keys() -> dict[str, str]:
    return st.session_state.setdefault(keys.OWNER_KEYS, {})


def new_owner_key(target: str | None = None) -> tuple[str, str]:
    """(secret, hash) for a run or study this session is about to start; remember(target, secret) once the id
    is known."""
    secret = access.new_secret()
    if target:
        _keys()[target] = secret
    return secret, access.hash_secret(secret)


def remember(target: str, secret: str) -> None:
    _keys()[target] = secret


def held_key(target: str) -> str | None:
    return _keys().get(target)


def study_target(study_id: str) -> str:
    return LABEL_PREFIX + study_id


def is_admin() -> bool:
    return bool(st.session_state.get(keys.ADMIN)) and access.admin_token() is not None


def may_change(row: dict[str, Any] | None) -> bool:
    """Whether this session may stop or delete the run `row` (a RunStore row): its own run, a run of its own
    study, or any run for the admin."""
    if row is None:
        return False
    if is_admin():
        return True
    stored = row.get("key_hash") or ""
    candidates = [held_key(row["id"])]
    if (row.get("label") or "").startswith(LABEL_PREFIX):
        candidates.append(held_key(row["label"]))
    return any(access.key_matches(secret, stored) for secret in candidates)


def may_change_study(study_id: str, runs: Any) -> bool:
    """Whether this session may stop the study whose runs (a DataFrame with id, label, key_hash) are given."""
    if is_admin():
        return True
    secret = held_key(study_target(study_id))
    return bool(len(runs)) and all(access.key_matches(secret, h) for h in runs["key_hash"].fillna(""))


def adopt_key(target_id: str, secret: str, study: bool = False) -> bool:
    """A link's `key=`: kept when it is the owner secret of that run (or of every run of that study); the
    uploads those runs train on become usable by this session too. False for a wrong or missing key."""
    if not secret or not RUN_ID.match(target_id or ""):
        return False
    store = get_store()
    if study:
        runs = store.runs(limit=100_000, label=study_target(target_id))
        hashes, configs = list(runs["key_hash"]), list(runs["config"])
    else:
        row = store.run(target_id)
        hashes, configs = ([row.get("key_hash")], [row["config"]]) if row else ([], [])
    if not hashes or not all(access.key_matches(secret, h) for h in hashes):
        return False
    remember(study_target(target_id) if study else target_id, secret)
    for config in configs:
        try:
            dataset = RunConfig.from_json(config).dataset
        except (ValueError, TypeError):
            continue
        if dataset_kind(dataset) == "upload":
            grant_upload(dataset, "your upload")
    return True


def owner_query(run_id: str) -> dict[str, str]:
    """The URL parameters of this run's link as this session may share it: with the key when it owns it."""
    secret = held_key(run_id)
    return {"run": run_id, "key": secret} if secret else {"run": run_id}


# ---------------------------------------------------------------------------------------------- data sources
def grant_upload(name: str, file_name: str) -> None:
    st.session_state.setdefault(keys.UPLOADS, {})[name] = file_name


def upload_name(name: str) -> str | None:
    return st.session_state.get(keys.UPLOADS, {}).get(name)


def source_refusal(dataset: str) -> str | None:
    """Why this browser session may not train on `dataset` (None: it may). A server path never; an upload only
    when this session uploaded it, or owns a run that trains on it."""
    refusal = browser_refusal(dataset)
    if refusal:
        return refusal
    if dataset_kind(dataset) == "upload" and upload_name(dataset) is None:
        return (
            f"{dataset} is another browser session's upload (or this session was reloaded); upload the file "
            "on the Data page to use it"
        )
    return None


def may_read_error(row: dict[str, Any]) -> bool:
    """A failed run's message may quote its table; show it to everyone only for data that ships with the app."""
    from mmoe_core.data.sources import is_public

    try:
        dataset = RunConfig.from_json(row["config"]).dataset
    except (ValueError, TypeError):
        return may_change(row)
    return is_public(dataset) or may_change(row) or upload_name(dataset) is not None


# ---------------------------------------------------------------------------------------------- password, admin
def app_password() -> str | None:
    """MMOE_PASSWORD, else `password` in Streamlit secrets; None: the app is open."""
    value = settings.get("MMOE_PASSWORD")
    if value:
        return value
    try:
        return str(st.secrets["password"]) or None
    except (FileNotFoundError, KeyError, AttributeError):
        return None
    except Exception:  # streamlit raises its own error when no secrets.toml exists at all
        return None


def locked() -> bool:
    """A password is set and this session has not typed it."""
    return app_password() is not None and not st.session_state.get(keys.AUTHED)


def _try_password() -> None:
    ok, message = access.check_guess(st.session_state.get("app_password"), app_password())
    st.session_state[keys.AUTHED] = ok
    st.session_state["_password_message"] = message
    st.session_state.pop("app_password", None)


def password_gate() -> None:
    """Before any page: when a password is set, a session that has not typed it sees only the password box."""
    if not locked():
        return
    st.title("MMoE Playground")
    with st.form("password_form"):
        st.text_input("Password", type="password", key="app_password")
        st.form_submit_button("Open", type="primary", on_click=_try_password)
    if st.session_state.get("_password_message"):
        st.error(st.session_state.pop("_password_message"))
    st.caption("This server asks for a password (MMOE_PASSWORD). Ask whoever runs it.")
    st.stop()


def _unlock_admin() -> None:
    ok, message = access.check_guess(st.session_state.get("admin_token"), access.admin_token())
    st.session_state[keys.ADMIN] = ok
    st.session_state["_admin_message"] = message
    st.session_state.pop("admin_token", None)


def admin_box() -> None:
    """Sidebar: a place for the admin token, only when the server has one."""
    if access.admin_token() is None:
        return
    with st.sidebar.expander("Server admin", expanded=bool(st.session_state.get("_admin_message"))):
        if is_admin():
            st.caption("Admin: you may stop and delete any run.")
            return
        st.text_input("Admin token", type="password", key="admin_token")
        st.button("Unlock", key="admin_unlock", on_click=_unlock_admin)
        if st.session_state.get("_admin_message"):
            st.error(st.session_state.pop("_admin_message"))
