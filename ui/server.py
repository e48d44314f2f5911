"""The server's shared state: one JobQueue and RunStore per process, each browser session's owner id and
lifetime, and the device this server trains on. Nothing here holds a model or a thread in session state.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import threading
import uuid
from typing import Any

import streamlit as st

from mmoe_core import settings
from mmoe_core.runs import RunStore, default_home
from mmoe_core.runtime.jobs import JobQueue

from . import keys, st_compat

OWNER_PREFIX = "web:"
_REAP_EVERY_S = 15.0
_started: list[tuple[JobQueue, threading.Event]] = []  # every queue this process made (tests shut them down)


def session_grace_s() -> float:
    """After a session's websocket closes, how long its queued runs wait for it to reconnect (MMOE_SESSION_GRACE_S)."""
    return float(settings.get("MMOE_SESSION_GRACE_S"))


def ensure_app_frame() -> None:
    """Call first in every page: a first visit straight to /runs must still run through app.py's frame."""
    if st_compat.pages_folder_mode_was_on():
        st.rerun()


def worker_threads() -> int:
    """Torch threads per training worker behind the web app: every CPU but one, shared among the jobs that
    may run at once. The spare core keeps the web server and a local browser from stalling torch's thread
    pool: on a busy 2-core machine, 2 threads trained 6-8x slower than 1 (bench/bench_live.py notes).
    MMOE_WORKER_THREADS overrides."""
    if settings.get("MMOE_WORKER_THREADS"):
        return max(1, settings.get("MMOE_WORKER_THREADS"))
    jobs = max(1, settings.get("MMOE_MAX_JOBS") or 1)
    return max(1, ((os.cpu_count() or 1) - 1) // jobs)


@st.cache_resource(show_spinner=False)
def _queue_for(home: str) -> JobQueue:
    queue = JobQueue(RunStore(home), threads=worker_threads())
    stop = threading.Event()
    _started.append((queue, stop))
    threading.Thread(target=_reap_sessions, args=(queue, stop), name="mmoe-session-reaper", daemon=True).start()
    return queue


def get_queue() -> JobQueue:
    """One JobQueue per server process and run-store folder (MMOE_HOME), shared by every session."""
    queue = _queue_for(str(default_home()))
    _watch_session(queue)
    return queue


def get_store() -> RunStore:
    return get_queue().store


def shutdown_queues() -> None:
    """Tests: stop every dispatcher, warm worker and session reaper this process started."""
    while _started:
        queue, stop = _started.pop()
        stop.set()
        queue.shutdown(timeout=2.0)
    _queue_for.clear()


def session_owner() -> str:
    """This browser session's id: runs are submitted under it so its queued runs leave when it ends."""
    if keys.OWNER not in st.session_state:
        sid = st_compat.script_session_id() or uuid.uuid4().hex  # no script context: not a browser session
        st.session_state[keys.OWNER] = OWNER_PREFIX + sid
    return st.session_state[keys.OWNER]


XSRF_COOKIE = "_streamlit_xsrf"  # set by Streamlit's server for the whole origin: every tab of a browser sends it


def browser_id(cookie: str | None) -> str:
    """A stable, non-secret id of the browser that holds an XSRF cookie. Tornado re-masks the token each time
    it writes the cookie ("2|mask|masked token|time"), so the id is a hash of the unmasked token; an unknown
    format is hashed whole. Empty without a cookie."""
    if not isinstance(cookie, str) or not cookie:
        return ""
    token = cookie.encode()
    parts = cookie.split("|")
    if len(parts) == 4 and parts[0] == "2":
        try:
            mask, masked = binascii.a2b_hex(parts[1]), binascii.a2b_hex(parts[2])
            if mask:
                token = bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked))
        except (binascii.Error, ValueError):
            pass
    return "browser:" + hashlib.sha256(token).hexdigest()[:16]


def requester() -> dict[str, str]:
    """Who is asking for a run, as JobQueue.submit's quotas count it: this session (its queued runs leave with
    it), its browser (all tabs share the XSRF cookie) and its network address."""
    try:
        cookie = st.context.cookies.get(XSRF_COOKIE)
        address = st.context.ip_address
        address = address if isinstance(address, str) else ""
    except Exception:  # no script context (a bare test): the session alone
        cookie, address = None, ""
    return {"owner": session_owner(), "browser": browser_id(cookie), "address": address}


class _SessionLease:
    """Held in a session-scoped resource cache: Streamlit releases it when the session's websocket closes."""

    def __init__(self, owner: str, queue: JobQueue):
        self.owner, self.queue = owner, queue


def _watch_session(queue: JobQueue) -> None:
    """Once a session has submitted runs (it has an owner id), hold a lease whose release drops its queue."""
    try:
        owner = st.session_state.get(keys.OWNER)
        if owner:
            _session_lease(owner, str(queue.store.home))
    except Exception:  # outside a script run (a thread, a test without a session): the reaper is the backstop
        pass


def _release_session(lease: _SessionLease) -> None:
    """Streamlit's session-end hook (on_release). It runs on the server's event loop, so the wait for a
    reconnect (a reload, a flaky network) happens on a timer thread."""
    timer = threading.Timer(session_grace_s(), _drop_if_gone, args=(lease,))
    timer.daemon = True
    timer.start()


def _drop_if_gone(lease: _SessionLease) -> int:
    """Drop the session's queued runs unless it has reconnected meanwhile."""
    try:
        if st_compat.is_active_session(lease.owner[len(OWNER_PREFIX) :]):
            return 0
        return lease.queue.drop_owner(lease.owner)
    except Exception as exc:  # never let a session hook take anything down
        print(f"mmoe session release: {type(exc).__name__}: {exc}", flush=True)
        return 0


@st.cache_resource(scope="session", on_release=_release_session, show_spinner=False)
def _session_lease(owner: str, home: str) -> _SessionLease:
    return _SessionLease(owner, _queue_for(home))


def orphaned_owners(store: RunStore, alive_sessions: set[str]) -> set[str]:
    """Owners of queued runs whose browser session the server no longer knows (CLI runs have no owner)."""
    owners = {(store.run(r) or {}).get("owner") or "" for r in store.queued()}
    return {o for o in owners if o.startswith(OWNER_PREFIX) and o[len(OWNER_PREFIX) :] not in alive_sessions}


def _reap_sessions(queue: JobQueue, stop: threading.Event) -> None:
    """Drop queued runs of sessions that ended (tab closed). Streamlit has no public session-end hook, so this
    asks its session manager every few seconds; a recently disconnected session (a reload, a flaky network)
    counts as alive until Streamlit itself forgets it."""
    while not stop.wait(_REAP_EVERY_S):
        try:
            alive = st_compat.active_session_ids()
            if alive is None:  # no Streamlit runtime in this process (tests, scripts)
                continue
            for owner in orphaned_owners(queue.store, alive):
                queue.drop_owner(owner)
        except Exception as exc:  # never let the reaper take anything down
            print(f"mmoe session reaper: {type(exc).__name__}: {exc}", flush=True)


@st.cache_resource(show_spinner=False)
def device_info() -> dict[str, Any]:
    """What this server can train on. Imports torch once, lazily, in the server process."""
    import torch

    cuda = torch.cuda.is_available()
    return {"cuda": cuda, "cuda_name": torch.cuda.get_device_name(0) if cuda else None, "cpus": os.cpu_count() or 1}


def device_label(name: str) -> str:
    info = device_info()
    gpu = f"CUDA ({info['cuda_name']})" if info["cuda"] else None
    return {
        "auto": f"Auto ({gpu or 'CPU'} on this server)",
        "cpu": f"CPU ({info['cpus']} cores)",
        "cuda": gpu or "CUDA (not available here)",
    }.get(name, name)


def page_path(name: str) -> str | None:
    """pages/<name>.py when that page exists (other pages may land later)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pages", f"{name}.py")
    return f"pages/{name}.py" if os.path.exists(path) else None


# ---------------------------------------------------------------------------------------------- controls
