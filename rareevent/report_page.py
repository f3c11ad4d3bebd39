"""The HTML report's page: its template, style, renderer script and Content Security Policy.

Every report, of one file or of a fleet, is one self-contained page:
plotly.js and the renderer inlined, each report's JSON model in a
``<script type="application/json">`` element, and a policy that lets only
those two scripts run, by the hash of their text. This module knows
nothing of scores or runs: it turns a body (HTML text) and the models
(JSON text) into the page. The renderer's JavaScript is
``rareevent/assets/report.js``, inlined byte for byte (its hash is in the
policy).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from rareevent.errors import RareEventError

# plotly.js 4.1.1, npm plotly.js-basic-dist-min (MIT)
PLOTLY_BUNDLE = "plotly-basic.min.js"
RENDERER = "report.js"  # draws each report's JSON model with plotly.js


def plotly_js() -> str:
    """plotly.js gzipped and in base64, to inline; without plotly, one line naming the extra.

    The report draws scatter traces only, so it inlines plotly.js' basic
    partial bundle, shipped in ``rareevent/assets`` (1.2 MB of script
    against the full bundle's 4.6 MB: the browser parses a quarter of it).
    The page unpacks it with the browser's own ``DecompressionStream``: no
    request is made.
    """
    try:
        import plotly  # noqa: F401  (the extra that draws the reports)
    except ImportError:
        raise RareEventError(
            "an HTML report needs plotly", hint="pip install 'rareevent[plot]'"
        ) from None

    return base64.b64encode(gzip.compress(_plotly_bundle(), 6, mtime=0)).decode("ascii")


def _plotly_bundle() -> bytes:
    """The plotly.js source the page runs (the renderer adds it as an inline script)."""
    return files("rareevent").joinpath("assets", PLOTLY_BUNDLE).read_bytes()


def page(title: str, body: str, reports: Sequence[tuple[str, str]]) -> str:
    """A page of ``body`` with plotly, the renderer and each report's JSON (by its root's id)."""
    scripts = "".join(
        (
            '<script id="report-data" type="application/json">'
            if root == "report"
            else f'<script class="report-data" data-for="{root}" type="application/json">'
        )
        + data  # script_json: no "<" in it
        + "</script>"
        for root, data in reports
    )
    return (
        _PAGE.format(title=html.escape(title), style=_STYLE)
        .replace("/*CSP*/", script_policy())
        .replace("/*PLOTLY*/", plotly_js())
        .replace("/*RENDER*/", _SCRIPT)
        # last: no marker is looked for in the data
        .replace("/*BODY*/", body + scripts)
    )


# what may not appear raw inside a <script> element: "</script>", "<!--" and "<script" change how
# the HTML parser reads the element's end (Django's json_script escapes the same three)
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe as the text of a ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as ``\\u003c``, ``\\u003e`` and
    ``\\u0026`` (``JSON.parse`` reads them back unchanged), so no text in the
    data, a sensor named ``<!--`` or ``</script>`` included, can end the
    element early or turn the rest of the page into a comment.
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.translate(_SCRIPT_ESCAPES)


def _sha256_source(code: str) -> str:
    """A CSP hash source for an inline script whose text is ``code``."""
    return _sha256_bytes(code.encode("utf-8"))


def _sha256_bytes(code: bytes) -> str:
    """A CSP hash source for an inline script whose UTF-8 text is ``code``."""
    digest = hashlib.sha256(code).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def script_policy() -> str:
    """The ``script-src`` of the report's Content Security Policy.

    Only two scripts may run: the page's renderer and plotly.js, which the
    renderer unpacks and adds as an inline script; each is allowed by the
    hash of its text, so no script injected into the page (there is no way
    in: every text is escaped) could run either. ``'unsafe-eval'`` stays:
    plotly.js builds some functions at run time.
    """
    return " ".join(
        [_sha256_source(_SCRIPT), _sha256_bytes(_plotly_bundle()), "'unsafe-eval'"]
    )


_STYLE = """<style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;\
margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd} \
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em} \
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4} \
table.header td:first-child,table.facts td:first-child{font-weight:600;background:#fafafa}
.plot{width:100%;height:380px} .plot.small{max-width:520px;height:360px}
.traces{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:.5em} \
.sensor-plot{height:230px;border:1px solid #eee}
.sensor-plot.context{border-style:dashed} .note{color:#666;font-size:.85em} \
section.episode{margin-bottom:1.5em}
</style>"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src /*CSP*/; \
style-src 'unsafe-inline'; img-src data: blob:; font-src data:">
<title>{title}</title>
{style}</head><body>
<h1>{title}</h1>
/*BODY*/
<script id="plotly-js" type="application/octet-stream">/*PLOTLY*/</script>
<script>/*RENDER*/</script>
</body></html>
"""

# one scored series' part of the page (``str.format``: the fields are HTML text, or numbers)
BODY = """<h2>Score timeline</h2>
{timeline}
<p class="note">Window score (log scale) against time: red spans are alarm episodes \
(purple when no labelled event is under them), green spans labelled events, the dashed line \
the threshold; lines break at time gaps. Drawn from {points:,} of {windows:,} windows \
(the lowest and highest of each bucket, so single-window spikes stay). \
Drag to zoom, double-click to reset.</p>
{extra}
{metrics}
{pr}
<h2>Alarm episodes</h2>
{summary}
<p class="note">Each episode shows the raw (unscaled) readings of its top sensors, and of \
the context columns (dashed frame: read by the model, not scored), around the episode \
(red: the rows its flagged windows cover), with their normal range (grey band: {band}).</p>
{episodes}
"""

# the renderer, as the page inlines it and the policy hashes it
_SCRIPT = files("rareevent").joinpath("assets", RENDERER).read_bytes().decode("utf-8")
