"""report.pdf: the HTML report printed by WeasyPrint, each operation from a new page.

WeasyPrint's URL fetcher is limited to data: URIs, so printing makes no outside request
(and reads no local file) whatever the HTML holds.
"""

from __future__ import annotations

from pathlib import Path

from cibwatch.errors import CibwatchError


def write_pdf(html: str, path: str | Path) -> Path:
    """Print `html` (made with for_print=True) to `path`."""
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except OSError as exc:  # Pango missing: scripts/system-deps.sh installs it
        raise CibwatchError(f"{path}: cannot make the PDF, WeasyPrint cannot load: {exc}") \
            from exc
    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
    HTML(string=html, url_fetcher=fetcher).write_pdf(str(path))
    return Path(path)
