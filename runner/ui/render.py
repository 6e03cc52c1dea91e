"""Templates and responses of the UI: one Jinja2 environment, autoescaping every value."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from runner.ui.table import duration_seconds, format_duration

HERE = Path(__file__).parent
# No inline script or style may run: a value a run logged can never become code, even if a
# template forgot to escape it.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a form POST carries "Origin: null", which
    # the server refuses (it checks Origin against its allowed hosts)
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@functools.cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["duration"] = lambda run: format_duration(duration_seconds(run))
    env.filters["short"] = lambda run_id: run_id[:8]
    env.filters["when"] = lambda text: (text or "").replace("T", " ")[:19]
    env.filters["number"] = _number
    env.globals["link"] = link
    return env


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The template ``name`` rendered with ``context``, with the UI's security headers."""
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def link(base: str, here: Mapping[str, str], **changes: Any) -> str:
    """``base`` with the current query string, ``changes`` applied (empty values dropped)."""
    merged = {**here, **{key: str(value) for key, value in changes.items()}}
    kept = [(key, value) for key, value in merged.items() if value != ""]
    return f"{base}?{urlencode(kept)}" if kept else base


def _number(value: float | None) -> str:
    if value is None:
        return "NaN"
    return f"{value:.6g}"
