"""The password: the auth file is checked with messages that never show a password, logins slow down after
failures, an open address without a password is warned about, and a real `python app.py --auth-file` answers no
page, file or API route before a login (and everything after one)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from access_fixtures import PASSWORD, USER, write_auth_file

import app
from demos import access
from demos.access import AuthFileError, LoginGuard, open_door_warning, read_auth_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability.server import AppServer  # noqa: E402

SECRET = "pa:ss w0rd-never-shown"


# --- the auth file --------------------------------------------------------------------------------------------
def test_auth_file_lines_are_user_colon_password_with_comments_and_blank_lines() -> None:
    path = write_auth_file(f"# the class\n\nteacher:{SECRET}\nstudent:two:colons:\r\n")
    try:
        assert read_auth_file(path) == {"teacher": SECRET, "student": "two:colons:"}
    finally:
        path.unlink()


@pytest.mark.parametrize(("content", "expected"), [
    ("teacher w0rd-never-shown\n", "line 1: expected `user:password`"),
    (f"ok:fine\n:{SECRET}\n", "line 2: expected `user:password`"),
    ("teacher:\n", "line 1: expected `user:password`"),
    (f"the teacher:{SECRET}\n", "line 1: the user name contains a space"),
    (f"teacher:{SECRET}\nteacher:{SECRET}x\n", "line 2: the user 'teacher' is listed twice"),
    ("", "holds no account"),
    ("# only a comment\n\n", "holds no account"),
])
def test_a_bad_auth_file_is_refused_by_line_without_showing_the_password(content: str, expected: str) -> None:
    path = write_auth_file(content)
    try:
        with pytest.raises(AuthFileError) as raised:
            read_auth_file(path)
    finally:
        path.unlink()
    assert expected in str(raised.value) and str(path) in str(raised.value)
    assert SECRET not in str(raised.value) and "never-shown" not in str(raised.value)


def test_a_missing_auth_file_says_so() -> None:
    with pytest.raises(AuthFileError, match="does not exist"):
        read_auth_file("/nonexistent/atlas-auth.txt")


def test_the_command_line_refuses_a_bad_auth_file_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    path = write_auth_file("teacher w0rd-never-shown\n")
    try:
        with pytest.raises(SystemExit):
            app.parse_args(["--auth-file", str(path)])
    finally:
        path.unlink()
    error = capsys.readouterr().err
    assert "line 1: expected `user:password`" in error and "never-shown" not in error


def test_the_auth_file_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_auth_file(f"{USER}:{PASSWORD}\n")
    try:
        monkeypatch.setenv(access.AUTH_FILE_ENV, str(path))
        args = app.parse_args([])
        options = app.launch_options(args)
    finally:
        path.unlink()
    assert args.accounts == {USER: PASSWORD} and callable(options["auth"])
    notes = "\n".join(app.startup_notes(args, options))
    assert "login required (1 account(s)" in notes and PASSWORD not in notes


def test_no_auth_file_means_no_login() -> None:
    options = app.launch_options(app.parse_args([]))
    assert "auth" not in options and options["run_history"] is False


# --- slowed logins --------------------------------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_each_failed_login_doubles_the_wait_before_the_next_attempt_up_to_a_cap() -> None:
    fake = FakeTime()
    guard = LoginGuard({USER: PASSWORD}, clock=fake.clock, sleep=fake.sleep)
    results = [asyncio.run(guard.check(USER, f"guess-{n}")) for n in range(7)]
    assert results == [False] * 7
    assert fake.slept == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    # a correct password is not answered sooner than a wrong one: it waits its turn too
    assert asyncio.run(guard.check(USER, PASSWORD)) is True and fake.slept[-1] == access.MAX_DELAY_SECONDS


def test_old_failures_stop_slowing_logins_down() -> None:
    fake = FakeTime()
    guard = LoginGuard({USER: PASSWORD}, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        asyncio.run(guard.check("nobody", "guess"))
    fake.now += access.FAILURE_MEMORY_SECONDS + 1
    assert guard.delay() == 0.0 and asyncio.run(guard.check(USER, PASSWORD)) is True


def test_parallel_guesses_wait_in_line_and_a_flood_is_refused_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    async def flood() -> tuple[list[bool], float]:
        guard = LoginGuard({USER: PASSWORD})
        guard._failures.extend([time.monotonic()] * 2)   # two recent failures: every attempt waits >= 1 s
        start = time.monotonic()
        results = await asyncio.gather(*[guard.check(USER, PASSWORD) for _ in range(access.MAX_WAITING_LOGINS + 3)])
        return list(results), time.monotonic() - start

    monkeypatch.setattr(access, "MAX_DELAY_SECONDS", 0.05)  # keep the test short: the cap bounds every wait
    results, seconds = asyncio.run(flood())
    assert results.count(False) == 3  # beyond MAX_WAITING_LOGINS: refused at once, the password not even compared
    assert results.count(True) == access.MAX_WAITING_LOGINS
    assert seconds >= access.MAX_WAITING_LOGINS * 0.05 * 0.9  # one at a time, each after its wait


# --- the warning for an open door -----------------------------------------------------------------------------
def test_listening_beyond_this_machine_without_a_password_is_warned_about() -> None:
    assert open_door_warning("127.0.0.1", share=False, has_password=False) is None
    assert open_door_warning("localhost", share=False, has_password=False) is None
    assert open_door_warning("0.0.0.0", share=False, has_password=True) is None
    warning = open_door_warning("0.0.0.0", share=False, has_password=False)
    assert warning and "0.0.0.0 without a password" in warning and "--auth-file" in warning
    assert "gradio.live" in (open_door_warning("127.0.0.1", share=True, has_password=False) or "")
    assert "private" in (open_door_warning("0.0.0.0", False, False, on_space=True) or "")


def test_start_up_prints_the_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(access.AUTH_FILE_ENV, raising=False)
    args = app.parse_args(["--host", "0.0.0.0"])
    assert any(note.startswith("WARNING") for note in app.startup_notes(args, app.launch_options(args)))


# --- a real server behind the password ------------------------------------------------------------------------
# Routes that carry the app (its layout, API, files, uploads, runs) must refuse without a login.
CLOSED_GETS = ["/config", "/gradio_api/info", "/gradio_api/openapi.json", "/gradio_api/file=app.py",
               "/gradio_api/file=/etc/passwd", "/gradio_api/file/app.py", "/gradio_api/queue/data?session_hash=x",
               "/gradio_api/upload_progress?upload_id=x", "/gradio_api/call/classify/x",
               "/gradio_api/proxy=http://127.0.0.1/", "/gradio_api/deep_link", "/gradio_api/runs",
               "/monitoring", "/gradio_api/dev/reload"]
CLOSED_POSTS = ["/gradio_api/queue/join", "/gradio_api/call/classify", "/gradio_api/call/v2/classify",
                "/gradio_api/run/classify", "/gradio_api/api/classify", "/gradio_api/upload",
                "/gradio_api/process_recording"]
# What the app's own page holds: none of it may reach a visitor before the login. (Gradio 6.31's login page does
# embed the description of the public API, the endpoint names and parameters that README.md publishes anyway:
# no layout, no input, no result. docs/reliability.md says so.)
APP_CONTENT = [b"Run a real transformer", b"sent-run", b"What this server keeps", b"Forget my results"]


@pytest.fixture(scope="module")
def locked_server() -> Iterator[AppServer]:
    path = write_auth_file(f"{USER}:{PASSWORD}\n")
    server = AppServer("tiny", extra_args=["--auth-file", str(path)], requires_login=True).start()
    yield server
    server.stop()
    path.unlink(missing_ok=True)


def _http(server: AppServer, method: str, path: str, cookies: dict[str, str] | None = None,
          **kwargs: object) -> tuple[int, bytes]:
    import httpx

    response = httpx.request(method, server.url + path, cookies=cookies, timeout=15, **kwargs)
    return response.status_code, response.content


def _login(server: AppServer, password: str = PASSWORD) -> tuple[int, dict[str, str], float]:
    import httpx

    start = time.monotonic()
    response = httpx.post(server.url + "/login", data={"username": USER, "password": password}, timeout=30)
    return response.status_code, dict(response.cookies), time.monotonic() - start


def test_no_route_with_app_content_answers_without_the_password(locked_server: AppServer) -> None:
    status, page = _http(locked_server, "GET", "/")
    assert status == 200 and b"auth_required" in page  # the login page, not the app
    opened = []
    for path in CLOSED_GETS:
        status, body = _http(locked_server, "GET", path)
        if status not in (401, 403, 404) or any(content in body for content in APP_CONTENT):
            opened.append(f"GET {path} -> {status} {body[:80]!r}")
    for path in CLOSED_POSTS:
        status, body = _http(locked_server, "POST", path, json={"data": ["x"], "fn_index": 0, "session_hash": "x"})
        if status not in (401, 403, 404, 422) or any(content in body for content in APP_CONTENT):
            opened.append(f"POST {path} -> {status} {body[:80]!r}")
    for content in APP_CONTENT:
        if content in page:
            opened.append(f"GET / shows {content!r}")
    assert not opened, "\n".join(opened)


def test_gradio_client_needs_the_password(locked_server: AppServer) -> None:
    from gradio_client import Client

    with pytest.raises(Exception, match="(?i)login|credentials"):
        Client(locked_server.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(locked_server.url, auth=(USER, "wrong"), verbose=False)


def test_with_the_password_every_endpoint_and_the_page_work(locked_server: AppServer) -> None:
    from gradio_client import Client

    client = Client(locked_server.url, auth=(USER, PASSWORD), verbose=False)
    assert client.predict("A warm, funny film.", api_name="/classify")[0]["label"] in ("positive", "negative")
    assert "answer" in client.predict("Paris is in France.", "Where is Paris?", api_name="/answer")[0]
    assert "translation" in client.predict("Hello world.", "auto", api_name="/translate")[0]
    assert "text" in client.predict("Once upon a time", 5, 0.0, 0, 1.0, 0, api_name="/generate")[0]
    _, cookies, _ = _login(locked_server)
    status, page = _http(locked_server, "GET", "/", cookies=cookies)
    assert status == 200 and b"What this server keeps" in page
    assert _http(locked_server, "GET", "/config", cookies=cookies)[0] == 200
    status, body = _http(locked_server, "POST", "/gradio_api/upload", cookies=cookies,
                         files={"files": ("note.txt", b"hello", "text/plain")})
    assert status == 200 and b"note.txt" in body
    # the REST shortcut past the queue (and its limits) stays closed even after a login
    assert _http(locked_server, "POST", "/gradio_api/run/classify", cookies=cookies,
                 json={"data": ["x"]})[0] == 404


def test_failed_logins_are_slowed_down_and_the_password_is_never_logged(locked_server: AppServer) -> None:
    durations = [_login(locked_server, f"guess-{n}")[2] for n in range(3)]
    status, _, last = _login(locked_server)
    assert status == 200, "the right password still logs in after failures"
    # waits before each attempt: 0, 0.5, 1.0, then 2.0 s before the correct one
    assert durations[1] >= 0.45 and durations[2] >= 0.95 and last >= 1.9, (durations, last)
    log = locked_server.log_text()
    assert PASSWORD not in log and "guess-" not in log
    assert "login required (1 account(s)" in log
