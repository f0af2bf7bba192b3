"""Error messages a person reads: one line, short, no traceback, no local paths.

A task's error message becomes its Step Functions cause (``<Step> failed: <message>``,
see ``infra/statemachine/pipeline.asl.json``) and what ``streamflow status`` prints; the
full error stays in the function's log and, for rejected months, in ``_REJECTION.json``.
"""

from __future__ import annotations

import re

MAX_MESSAGE = 260  # + "PublishOnlineFeatures failed: " stays under ~300 characters
# An absolute filesystem path: its folders are dropped, its file name kept. URLs and
# s3:// keys are left alone (their slashes follow ':', '/' or a word character).
_LOCAL_PATH = re.compile(r"(?<![\w:/.~-])(?:/[\w.+~-]+)+/(?=[\w.+~-])")
_SPACE = re.compile(r"\s+")


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line, local folders removed, cut to ``limit`` characters."""
    text = _SPACE.sub(" ", _LOCAL_PATH.sub("", message or "")).strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def short_error(exc: BaseException, limit: int = MAX_MESSAGE) -> BaseException:
    """``exc`` with a one-line message, same type (Retry/Catch match on the type's name).

    The exception is changed in place when its message comes from ``args``; an exception
    that builds its text elsewhere is replaced by one of a same-named type."""
    text = one_line(str(exc) or type(exc).__name__, limit)
    if str(exc) == text:
        return exc
    try:
        exc.args = (text,)
        if str(exc) == text:
            return exc
    except Exception:  # noqa: BLE001 - fall through to a stand-in
        pass
    stand_in = type(type(exc).__name__, (Exception,), {"__module__": type(exc).__module__})(text)
    return stand_in
