"""One TOML value of a declared kind (settings.Setting) → its typed value, or a sentence
naming the key, the reason and the fix. One small function per kind."""

from __future__ import annotations

import difflib
import re
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.settings import Section, Setting

ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
              "kb": 1000, "mb": 1000**2, "gb": 1000**3}
EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_MAILBOX = re.compile(r"^\s*(.*?)\s*<([^<>]+)>\s*$", re.S)
_STRINGS = ("str", "url", "email", "env", "choice", "time", "timezone", "path")


class Bad(Exception):
    """A value that is not of its kind: (reason, fix)."""


def mailbox(value: str) -> tuple[str, str]:
    """'Name <addr>' or a bare address → (name, address). Split at the angle brackets, not
    at commas: an unquoted "Papers, daily <d@example.org>" is still one mailbox."""
    m = _MAILBOX.match(value)
    return (m.group(1).strip().strip('"').strip(), m.group(2).strip()) if m else ("", value.strip())


def convert(s: Setting, value, label: str, base: Path, report):
    """The typed value; on a bad one, report the problem and return the default."""
    try:
        if s.kind in _STRINGS and not isinstance(value, str):
            raise Bad(f"must be a string, not {tname(value)}", f'put it in quotes: {s.name} = "..."')
        return _KINDS[s.kind](s, value, label, base, report)
    except Bad as e:
        reason, fix = e.args
        report(label, f"{reason}; {fix}.")
        return default(s, base)


def default(s: Setting, base: Path):
    """The declared default, converted like a user value (defaults are written as in TOML)."""
    if s.kind in ("time", "duration", "retention", "size", "path") and s.default:
        return convert(s, s.default, "", base, _never)
    return dict(s.default) if isinstance(s.default, dict) else s.default


def _never(label: str, msg: str) -> None:
    raise AssertionError(f"invalid built-in default: {msg}")


def _number(s: Setting, value, whole: bool):
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise Bad(f"must be a {'whole number' if whole else 'number'}, not {tname(value)}",
                  f"write e.g. {s.name} = {(s.default or 1) if whole else s.default}")
    if s.minimum is not None and value < s.minimum:
        raise Bad(f"is {value}, below the minimum {int(s.minimum) if whole else s.minimum}",
                  "raise it")
    return value if whole else float(value)


def _bool(s, value, *_):
    if not isinstance(value, bool):
        raise Bad(f"must be true or false, not {tname(value)}", "write true or false without quotes")
    return value


def _choice(s, value, *_):
    if value not in s.choices:
        raise Bad(f"is {value!r}, which is not one of {', '.join(s.choices)}",
                  f"pick one{did_you_mean(value, s.choices)}")
    return value


def _time(s, value, *_):
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise Bad(f"is {value!r}, not a time of day", 'write 24-hour HH:MM, e.g. "07:30"')
    return dtime(int(m.group(1)), int(m.group(2)))


def _timezone(s, value, *_):
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Bad(f"is {value!r}, not a known time zone",
                  'use an IANA name such as "Europe/Berlin" or "America/New_York"') from None
    return value


def _scaled(value, pattern: re.Pattern, units: dict, what: str, example: str) -> int:
    """A duration or size: a positive number of base units, or a number and a unit."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = pattern.match(value) if isinstance(value, str) else None
    if not m or float(m.group(1)) <= 0:
        raise Bad(f"is {value!r}, not a {what}", example)
    return int(float(m.group(1)) * units[(m.group(2) or "b").lower() if what == "size"
                                         else m.group(2)])


def _duration(s, value, *_):
    return _scaled(value, DURATION_RE, DURATION_UNITS, "duration",
                   'write a number and a unit, e.g. "30m", "1h" or "1d"')


def _retention(s, value, *rest):
    """How long something is kept: a duration, or "never" to keep it for good (None)."""
    if value == "never":
        return None
    try:
        return _duration(s, value, *rest)
    except Bad:
        raise Bad(f"is {value!r}, not a duration or \"never\"",
                  'write e.g. "180d" or "52w", or "never" to keep everything') from None


def _size(s, value, *_):
    return _scaled(value, SIZE_RE, SIZE_UNITS, "size", 'write e.g. "15MiB" or a number of bytes')


def _url(s, value, *_):
    if not re.match(r"^https?://[^\s/]+", value):
        fix = ("local files go in path = \"...\"" if value.startswith(("file:", "/", ".")) else
               "write a full http:// or https:// address")
        raise Bad(f"is {value!r}, not an http(s) URL", fix)
    return value.rstrip("/") if s.name == "base_url" else value


def _email(s, value, *_):
    if not EMAIL_RE.match(value):
        raise Bad(f"is {value!r}, not an email address", "write it as name@example.org")
    return value


def _env(s, value, *_):
    if value and not ENV_RE.match(value):
        raise Bad(f"is {value!r}, not an environment variable name",
                  "name the variable (e.g. DIGEST_SMTP_PASSWORD), not its value")
    return value


def _list(s, value, *_):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise Bad(f"must be a list of strings, not {tname(value)}",
                  f'write e.g. {s.name} = ["first", "second"]')
    return tuple(value)


def _weights(s, value, label: str, base, report):
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return {x: 1.0 for x in value}
    if not isinstance(value, dict):
        raise Bad(f"must be a table of phrase = weight, not {tname(value)}",
                  f'write [{label.split()[0][1:-1]}.interests] and lines like "topic" = 2')
    out = {}
    for phrase, w in value.items():
        if isinstance(w, bool) or not isinstance(w, int | float):
            report(f"{label} {phrase!r}", f"has weight {w!r}, not a number; write e.g. "
                   f'"{phrase}" = 2')
            continue
        out[phrase] = float(w)
    return out


def _sections(s, value, label: str, base, report):
    """[users.NAME.sections]: title = {match = [...], max = N}, or title = [...] for short."""
    if not isinstance(value, dict):
        raise Bad(f"must be a table of title = {{match = [...], max = N}}, not {tname(value)}",
                  f'write [{label.split()[0][1:-1]}.sections] and lines like '
                  '"Style transfer" = {match = ["style transfer"], max = 3}')
    out = []
    for title, spec in value.items():
        where = f"{label} {title!r}"
        if isinstance(spec, list | str):
            spec = {"match": spec}
        if not isinstance(spec, dict) or set(spec) - {"match", "max"}:
            report(where, 'must be {match = [...], max = N} (max optional); write e.g. '
                   f'"{title}" = {{match = ["{title.lower()}"], max = 3}}')
            continue
        match = spec.get("match", [])
        match = [match] if isinstance(match, str) else match
        if not match or not isinstance(match, list) or not all(
                isinstance(m, str) and m.strip() for m in match):
            report(where, "needs match, a non-empty list of phrases, authors or categories; "
                   f'write e.g. match = ["{title.lower()}"]')
            continue
        cap = spec.get("max")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            report(where, f"has max = {cap!r}, not a whole number of at least 1; write e.g. max = 3 "
                   "or leave it out")
            continue
        out.append(Section(str(title), tuple(m.strip() for m in match), cap))
    return tuple(out)


_KINDS = {
    "str": lambda s, v, *_: v,
    "int": lambda s, v, *_: _number(s, v, whole=True),
    "float": lambda s, v, *_: _number(s, v, whole=False),
    "bool": _bool, "choice": _choice, "time": _time, "timezone": _timezone,
    "duration": _duration, "retention": _retention, "size": _size, "url": _url, "email": _email, "env": _env,
    "path": lambda s, v, label, base, _: (base / v).resolve() if v else v,
    "list": _list, "weights": _weights, "sections": _sections,
}


def did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def tname(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
