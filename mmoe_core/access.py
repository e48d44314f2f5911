"""Who may change a run: owner secrets, the admin token and the app password, without any UI.

A run (or a study: every run of it shares one secret) gets a random owner secret when a browser starts it. The
browser keeps the secret (in its session and in its *owner link*, `?run=ID&key=SECRET`); the run store keeps
only its SHA-256, so a copied database or a shared view link (`?run=ID`) grants nothing. Every comparison is
constant-time (hmac.compare_digest).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

from . import settings

SECRET_BYTES = 16  # 128 random bits: not guessable, short enough for a link


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_matches(secret: str | None, stored_hash: str | None) -> bool:
    """Whether `secret` is the owner secret whose hash is stored; a run without a hash has no web owner."""
    if not secret or not stored_hash:
        return False
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def _same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def admin_token() -> str | None:
    return settings.get("MMOE_ADMIN_TOKEN") or None


def is_admin_token(given: str | None) -> bool:
    """The admin token may stop or delete any run; unset means there is no admin."""
    return _same(given, admin_token())


class AttemptLimiter:
    """At most `limit` failed guesses per `window_s` on this server (password and admin token together), so
    a password cannot be guessed at the speed of a script; a right answer is always checked."""

    def __init__(self, limit: int = 10, window_s: float = 60.0):
        self.limit, self.window_s = limit, window_s
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()

    def blocked(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._failures and self._failures[0] < now - self.window_s:
                self._failures.popleft()
            return len(self._failures) >= self.limit

    def failed(self, now: float | None = None) -> None:
        with self._lock:
            self._failures.append(time.monotonic() if now is None else now)


LIMITER = AttemptLimiter()


def check_guess(given: str | None, expected: str | None, limiter: AttemptLimiter = LIMITER) -> tuple[bool, str]:
    """(accepted, message) for a password or token typed into the app."""
    if limiter.blocked():
        return False, "Too many wrong attempts on this server; wait a minute and try again."
    if _same(given, expected):
        return True, ""
    limiter.failed()
    return False, "That is not right; try again."
