"""Fuzz: hypothesis over every public endpoint's parameters; always a clear error or a correct answer, never a crash."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability.endpoints import ENDPOINTS, PARAMETER_KINDS, VALID_CALLS, answer_problem  # noqa: E402
from reliability.outcomes import Outcome, raw_call  # noqa: E402
from reliability.report import record_figures  # noqa: E402
from reliability.server import AppServer, shared_server  # noqa: E402

EXAMPLES_PER_ENDPOINT = 40
ONE_MEGABYTE = 1024 * 1024
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_ENDPOINT,
    deadline=None,
    database=None,          # nothing written into the working tree
    derandomize=True,       # the same examples on every run: CI failures reproduce locally
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

WHITESPACE = ["", " ", "   ", "\t", "\n\n", "\r\n", "\u00a0", "\u2003\u2009", "\u3000", "\u200b", "\ufeff"]
MIXED_SCRIPTS = [
    "Hello 你好 مرحبا שלום Привет नमस्ते こんにちは 안녕하세요",
    "🙂👩‍👩‍👧‍👦🏳️‍🌈 emoji with ZWJ sequences 🧑🏽‍🚀",
    "مرحبا بالعالم، هذا نص من اليمين إلى اليسار",
    "שלום עולם \u202eright-to-left override\u202c then back",
    "e\u0301\u0301\u0301 combining marks Z\u0351\u0352\u0353a\u0354l\u0355g\u0356o",
    "I loved it! 我很喜欢这部电影。",
    "\U0001d54f\U0001d560\U0001d566 mathematical alphanumerics",
    "<img src=x onerror=alert(1)> {{7*7}} ${7*7} </script>",
    "\x00\x01\x02 null and control bytes \x1b[31m ANSI \x7f",
]
BIG_NUMBERS = [0, -1, 1, 2, -(2**31), 2**31, 2**53 + 1, 2**63, -(2**63), 10**30, -(10**30), 10**400]
NON_FINITE = [math.nan, math.inf, -math.inf]

wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
hostile_text = st.one_of(
    st.sampled_from(WHITESPACE),
    st.sampled_from(MIXED_SCRIPTS),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), min_size=1, max_size=30),
    st.text(max_size=300),
    st.text(min_size=2001, max_size=2100),          # just over MAX_INPUT_CHARS
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    wrong_types,
)
hostile_number = st.one_of(
    st.sampled_from(BIG_NUMBERS),
    st.sampled_from(NON_FINITE),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-3, max_value=3),
    st.sampled_from(["", "12", "abc", " 3 ", "1e5", "nan", "inf"]),
    wrong_types,
)


def _strategy(kind: str, valid: Any) -> st.SearchStrategy[Any]:
    """Either the valid value or something hostile for a parameter of this kind."""
    if kind == "text":
        hostile = hostile_text
    elif kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split("|")
        hostile = st.one_of(
            st.sampled_from(choices),
            st.sampled_from(["", "fr-de", "EN-ZH", " en-zh ", "zh_en", "en→zh", "auto\x00", "../../etc/passwd"]),
            st.text(max_size=20),
            hostile_number,
        )
    else:
        hostile = hostile_number
    return st.one_of(st.just(valid), hostile)


def _arguments(api_name: str) -> st.SearchStrategy[list[Any]]:
    kinds = PARAMETER_KINDS[api_name]
    return st.tuples(*[_strategy(kind, valid) for kind, valid in zip(kinds, VALID_CALLS[api_name])]).map(list)


@pytest.fixture(scope="module")
def server() -> AppServer:
    return shared_server("tiny")


_tally: dict[str, dict[str, int]] = {}


def _check(server: AppServer, api_name: str, arguments: list[Any]) -> Outcome:
    outcome = raw_call(server.port, api_name, arguments, timeout=120)
    counts = _tally.setdefault(api_name, {"ok": 0, "clear_error": 0, "failure": 0, "queue_full": 0})
    counts[outcome.kind] += 1
    shown = repr(arguments)[:300]
    assert server.alive, f"{api_name}{shown} killed the server:\n{server.log_tail()}"
    assert outcome.kind in ("ok", "clear_error"), f"{api_name}{shown}: {outcome.kind}: {outcome.detail}"
    if outcome.kind == "ok":
        problem = answer_problem(api_name, tuple(arguments), outcome.value)
        assert problem is None, f"{api_name}{shown}: {problem}"
    return outcome


@pytest.mark.parametrize("api_name", ENDPOINTS)
def test_every_endpoint_answers_hostile_parameters_clearly(server: AppServer, api_name: str) -> None:
    @FUZZ_SETTINGS
    @given(arguments=_arguments(api_name))
    def fuzz(arguments: list[Any]) -> None:
        _check(server, api_name, arguments)

    fuzz()
    record_figures(f"fuzz{api_name}", _tally.get(api_name, {}))


@pytest.mark.parametrize("api_name", ENDPOINTS)
def test_one_megabyte_text_is_refused_with_the_limit(server: AppServer, api_name: str) -> None:
    arguments = list(VALID_CALLS[api_name])
    arguments[0] = "a" * ONE_MEGABYTE
    outcome = _check(server, api_name, arguments)
    assert outcome.kind == "clear_error", f"a 1 MB input was accepted by {api_name}"
    assert "limit" in outcome.detail.lower() or "characters" in outcome.detail.lower(), outcome.detail


def test_one_megabyte_string_in_a_number_field_is_refused(server: AppServer) -> None:
    arguments = list(VALID_CALLS["/generate"])
    arguments[1] = "9" * ONE_MEGABYTE
    outcome = _check(server, "/generate", arguments)
    assert outcome.kind == "clear_error"


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_in_every_numeric_field(server: AppServer, value: float) -> None:
    for api_name in ENDPOINTS:
        for index, kind in enumerate(PARAMETER_KINDS[api_name]):
            if kind not in ("int", "float"):
                continue
            arguments = list(VALID_CALLS[api_name])
            arguments[index] = value
            outcome = _check(server, api_name, arguments)
            assert outcome.kind == "clear_error", f"{api_name} accepted {value} as parameter {index}"


def test_the_server_still_answers_after_the_fuzzing(server: AppServer) -> None:
    for api_name in ENDPOINTS:
        outcome = _check(server, api_name, list(VALID_CALLS[api_name]))
        assert outcome.kind == "ok", f"{api_name} no longer answers a valid request: {outcome.detail}"


# --- regressions: each of these once answered with no message (gradio's "no details") or the catch-all -----------------
GENERATE_BAD_NUMBERS = [
    (1, "abc"), (1, None), (1, [1]), (1, "9" * 400), (5, math.nan), (5, math.inf), (5, -math.inf), (5, "7"),
    (3, None), (4, "0.5"),
]


@pytest.mark.parametrize(("index", "value"), GENERATE_BAD_NUMBERS, ids=[f"{i}-{str(v)[:8]}" for i, v in GENERATE_BAD_NUMBERS])
def test_generate_settings_of_the_wrong_type_get_a_clear_error(server: AppServer, index: int, value: Any) -> None:
    """A text, null, list or non-finite value in a sampling setting must be named in a clear message."""
    arguments = list(VALID_CALLS["/generate"])
    arguments[index] = value
    outcome = raw_call(server.port, "/generate", arguments, timeout=60)
    assert outcome.kind == "clear_error", f"/generate with parameter {index} = {str(value)[:40]!r}: {outcome}"


@pytest.mark.parametrize("index", [1, 2, 3])
def test_explain_indices_too_large_for_a_float_get_a_clear_error(server: AppServer, index: int) -> None:
    arguments = list(VALID_CALLS["/explain"])
    arguments[index] = 10**400
    outcome = raw_call(server.port, "/explain", arguments, timeout=60)
    assert outcome.kind == "clear_error", f"/explain with parameter {index} = 10**400: {outcome.detail}"


def test_validation_refuses_integers_too_large_for_a_float() -> None:
    from service.errors import InvalidInputError
    from service.validation import check_number

    with pytest.raises(InvalidInputError):
        check_number(10**400, "seed", 0, 2**31 - 1, integer=True)
