"""Schemathesis hooks for Lucent's example project (run by tests/api/openapi.rs).

They teach schemathesis what the OpenAPI document names but JSON Schema cannot spell out, and
sign it in; they never loosen a check.

- `format: lucent-filter` (the list `filter`): valid expressions of docs/access.md, built on the
  system fields every collection has.
- The signed-in account: fuzzed requests may end its session (logout, logout-all), so a 401 makes
  schemathesis ask again, and this signs in anew; should the fuzzer have locked the account
  (failed logins with its address), a fresh account is registered instead.
- Two checks that refine built-in ones where the document cannot say more: see below.
"""

import copy
import json
import os
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.specs.openapi import checks as builtin_checks

BASE = os.environ["LUCENT_ST_BASE"]
COLLECTION = os.environ.get("LUCENT_ST_COLLECTION", "users")

_literal = st.from_regex(r"[a-z0-9-]{0,12}", fullmatch=True).map(lambda s: f"'{s}'")
_comparison = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
_atom = st.one_of(
    st.builds(lambda op, value: f"id {op} {value}", _comparison, _literal),
    _literal.map(lambda value: f"id ~ {value}"),
    st.builds(
        lambda field, op: f"{field} {op} now",
        st.sampled_from(["createdAt", "updatedAt"]),
        _comparison,
    ),
    st.lists(_literal, max_size=3).map(lambda items: f"id in [{', '.join(items)}]"),
    st.sampled_from(["true", "false", "id != null"]),
)
_filter = st.one_of(
    st.just(""),
    st.recursive(
        _atom,
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"({a}) && ({b})", inner, inner),
            st.builds(lambda a, b: f"{a} || {b}", inner, inner),
            inner.map(lambda a: f"!({a})"),
        ),
        max_leaves=4,
    ),
)
schemathesis.openapi.format("lucent-filter", _filter)


@schemathesis.auth()
class LucentAccount:
    """A bearer token of the account in LUCENT_ST_EMAIL / LUCENT_ST_PASSWORD."""

    def __init__(self):
        self.email = os.environ["LUCENT_ST_EMAIL"]
        self.password = os.environ["LUCENT_ST_PASSWORD"]

    def get(self, case, context):
        answer = requests.post(
            f"{BASE}/api/{COLLECTION}/login",
            json={"email": self.email, "password": self.password},
            timeout=30,
        )
        if answer.status_code != 200:
            self.email = f"st-{uuid.uuid4().hex}@example.com"
            answer = requests.post(
                f"{BASE}/api/{COLLECTION}/register",
                json={"email": self.email, "password": self.password},
                timeout=30,
            )
            answer.raise_for_status()
        return answer.json()["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# Answers to schema-valid requests that no schema can rule out, each tied to the one error that
# names it: a mailed token the generator cannot know, the current password of the account (needed
# to change its own login or password), ids of a to-many relation that name no document, and an
# `expiresAt` that lies in the past. schemathesis.toml
# lets the built-in `positive_data_acceptance` take a 400 for these operations; this check holds
# that 400 to these errors.
_POSITIVE_EXPECTED = {401, 403, 404, 409, 429}
_EXCUSED = [
    (re.compile(r"^POST /api/[^/]+/(verify-email|reset-password)$"), {("", "invalid_token")}),
    (
        re.compile(r"^PATCH /api/[^/]+/\{id\}$"),
        {
            ("oldPassword", "required"),
            ("oldPassword", "invalid_password"),
            # A to-many relation's ids must name existing documents, which no schema can say.
            ("related", "invalid_relation"),
        },
    ),
    (re.compile(r"^POST /api/[^/]+/api-keys$"), {("expiresAt", "in_the_past")}),
]


def _excused(case, body):
    label = f"{case.operation.method.upper()} {case.operation.path}"
    error = body.get("error", {}) if isinstance(body, dict) else {}
    found = {(d.get("field", ""), d.get("code")) for d in error.get("details", [])}
    found = found or {("", error.get("code"))}
    return any(pattern.match(label) and found <= allowed for pattern, allowed in _EXCUSED)


def _is(case, mode):
    meta = case.meta
    return meta is not None and getattr(meta.generation.mode, f"is_{mode}")


def _json(response):
    try:
        return json.loads(response.content)
    except ValueError:
        return None


@schemathesis.check
def positive_data_acceptance_with_secrets(ctx, response, case):
    """`positive_data_acceptance` where the request needs a secret the generator cannot know."""
    if not any(p.match(f"{case.operation.method.upper()} {case.operation.path}") for p, _ in _EXCUSED):
        return None
    status = response.status_code
    if not _is(case, "positive") or status < 400 or status >= 500 or status in _POSITIVE_EXPECTED:
        return None
    if not _excused(case, _json(response)):
        raise AssertionError(f"Valid data should have been accepted: {status} {response.content[:300]!r}")
    return None


@schemathesis.check
def form_posts_redirect(ctx, response, case):
    """A form post with `redirect` answers 303 both ways: to `redirect` on success, to the form
    page with `?error=CODE` on failure. schemathesis.toml counts 303 as a rejection of invalid
    data; this tells the two apart: a failure must not answer a valid form, a success must not
    answer an invalid one (judged by the built-in check, as if the answer were a 200)."""
    if response.status_code != 303 or case.meta is None:
        return None
    location = (response.headers.get("location") or [""])[0]
    codes = parse_qs(urlsplit(location).query).get("error", [])
    if codes:
        if _is(case, "positive") and codes[0] in ("validation_failed", "bad_request"):
            raise AssertionError(f"Valid form refused: 303 to {location}")
        return None
    if _is(case, "negative"):
        accepted = copy.copy(response)
        accepted.status_code = 200
        builtin_checks.negative_data_rejection(ctx, accepted, case)
    return None
