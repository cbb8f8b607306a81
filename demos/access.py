"""Who may open the app: the password file (`user:password` lines), slowed logins, and the warning for an open door.

Gradio does the rest once `launch(auth=...)` has a check: every page, file and API route asks for a login cookie.
Passwords live only in the file and in this process's memory; no message here ever contains one.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import ipaddress
import os
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

AUTH_FILE_ENV = "ATTENTION_ATLAS_AUTH_FILE"
FIRST_DELAY_SECONDS = 0.5       # the wait before the attempt that follows one recent failure; doubles per failure
MAX_DELAY_SECONDS = 8.0         # at most ~7 guesses a minute however many failures came before
FAILURE_MEMORY_SECONDS = 600.0  # failures older than this no longer slow anyone down
MAX_WAITING_LOGINS = 32         # attempts beyond this are refused unchecked instead of piling up behind the lock
LOGIN_MESSAGE = "This Attention Atlas asks for a login: ask whoever runs it for the user name and password."


class AuthFileError(ValueError):
    """The password file cannot be used; the message says which file, which line and what to fix (never a password)."""


def read_auth_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """{user: password} from a file of `user:password` lines (blank lines and `#` comments are skipped).

    The password is everything after the first colon, kept exactly (only the line ending is removed)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuthFileError(f"The auth file {file} does not exist. Create it with one `user:password` line per "
                            "account, or leave out --auth-file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise AuthFileError(f"The auth file {file} cannot be read ({type(error).__name__}). It must be a UTF-8 "
                            "text file of `user:password` lines that this user may read.") from None
    accounts: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, colon, password = line.partition(":")
        user = user.strip()
        if not colon or not user or not password:
            raise AuthFileError(f"The auth file {file}, line {number}: expected `user:password` (a user name, a "
                                "colon, then a password that is not empty).")
        if any(character.isspace() for character in user):
            raise AuthFileError(f"The auth file {file}, line {number}: the user name contains a space; "
                                "use a user name without spaces.")
        if user in accounts:
            raise AuthFileError(f"The auth file {file}, line {number}: the user {user!r} is listed twice; keep one "
                                "line per user.")
        accounts[user] = password
    if not accounts:
        raise AuthFileError(f"The auth file {file} holds no account. Add one `user:password` line per account.")
    return accounts


def readable_by_others(path: str | os.PathLike[str]) -> bool:
    """True when the file's group or other users may read it (then `chmod 600` is advised)."""
    try:
        return bool(Path(path).stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


class LoginGuard:
    """Checks a login the way `gradio.launch(auth=...)` calls it, one attempt at a time, slower after failures.

    Every attempt waits behind one lock for a delay that grows with the failures of the last
    FAILURE_MEMORY_SECONDS (0, then FIRST_DELAY_SECONDS doubling up to MAX_DELAY_SECONDS) before the password is
    even compared, so guesses cannot run in parallel and a correct guess is not answered sooner than a wrong one.
    Attempts beyond MAX_WAITING_LOGINS are refused without a check. Under attack, real users wait too (at most
    MAX_DELAY_SECONDS per attempt ahead of them): the price of a shared password.
    """

    def __init__(self, accounts: dict[str, str], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if not accounts:
            raise ValueError("LoginGuard needs at least one account")
        self._accounts = dict(accounts)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._failures: collections.deque[float] = collections.deque(maxlen=64)
        self._waiting = 0

    def recent_failures(self) -> int:
        horizon = self._clock() - FAILURE_MEMORY_SECONDS
        while self._failures and self._failures[0] < horizon:
            self._failures.popleft()
        return len(self._failures)

    def delay(self) -> float:
        """Seconds the next attempt waits before its password is compared."""
        failures = self.recent_failures()
        return 0.0 if failures == 0 else min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (failures - 1))

    async def check(self, username: str, password: str) -> bool:
        """True when `username:password` is an account of the file (Gradio's auth callable)."""
        if self._waiting >= MAX_WAITING_LOGINS:
            return False
        self._waiting += 1
        try:
            async with self._lock:
                await self._sleep(self.delay())
                expected = self._accounts.get(str(username))
                # compare_digest on both branches: an unknown user takes as long as a wrong password
                valid = hmac.compare_digest(str(password).encode(), (expected or "").encode()) and expected is not None
                if not valid:
                    self._failures.append(self._clock())
                return valid
        finally:
            self._waiting -= 1


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def open_door_warning(host: str, share: bool, has_password: bool, on_space: bool = False) -> str | None:
    """The warning printed at start when others can reach the app and no password is asked; None when all is safe."""
    if has_password or (is_loopback(host) and not share):
        return None
    where = "a public gradio.live link" if share else f"{host}"
    advice = ("On a Space, set the Space to private in its settings (or give ATTENTION_ATLAS_AUTH_FILE). "
              if on_space else "")
    return (f"WARNING: Attention Atlas listens on {where} without a password: anyone who can reach it may use it "
            f"and fill its queue. {advice}Add --auth-file PATH (one `user:password` line per account) to ask for a "
            "login.")
