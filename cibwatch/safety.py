"""Post texts, handles and names are written by adversaries: neutralise them on output.

HTML escaping is Jinja2's autoescape (always on); this module covers the rest: CSV cells
(spreadsheet formula injection), terminal output (control characters, Rich markup) and
file names (no output path is ever taken from data).
"""

from __future__ import annotations

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def csv_safe(value: object) -> object:
    """Prefix a cell that a spreadsheet would run as a formula with a single quote (OWASP)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def terminal_safe(value: object, limit: int | None = None) -> str:
    """Text for a terminal: control and bidi-override characters shown as '?', Rich markup
    escaped, optionally cut to `limit` characters."""
    from rich.markup import escape

    text = _CONTROL.sub("?", "" if value is None else str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text)


def defang(url: str) -> str:
    """`https://twitter.com/x` -> `https://twitter[.]com/x`, as threat reports publish links."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host, slash, path = rest.partition("/")
    host = host.replace(".", "[.]")
    return f"{scheme}{sep}{host}{slash}{path}"
