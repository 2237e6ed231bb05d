"""report.html: one self-contained page (inline CSS, charts as data-URI SVG, no script).

Jinja2 autoescape is always on and no template marks data safe; a Content-Security-Policy
meta tag forbids scripts and every outside request as a second line of defence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader

from cibwatch import __version__
from cibwatch.report.charts import data_uri
from cibwatch.report.context import pct
from cibwatch.report.findings import utc_label
from cibwatch.safety import defang

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "not available" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("cibwatch.report", "templates"),
        autoescape=True,
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, num=_num, datauri=data_uri, defang=defang, utc=utc_label)
    return env


def render_html(views: list[dict[str, Any]], title: str = "Coordinated inauthentic behaviour",
                for_print: bool = False) -> str:
    """The report page; `for_print` adds page breaks and page numbers for the PDF."""
    return environment().get_template("report.html.j2").render(
        views=views,
        title=title,
        csp=CSP,
        for_print=for_print,
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
