"""The static stylesheet and script inlined into the HTML report.

Both are constants: the report's Content-Security-Policy allows exactly these two blocks
by their SHA-256 hash, so no other inline script or style can run. Nothing from the
result is ever placed inside them; the script only reads data-* attributes.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;
--err:#cf222e;--warn:#9a6700;--info:#0969da;--ok:#1a7f37}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:1100px;padding:0 1.2rem 3rem}
header{border-bottom:4px solid var(--line);padding:1rem 0 .6rem}
header.fail{border-color:var(--err)}header.pass{border-color:var(--ok)}
h1{font-size:1.5rem;margin:.2rem 0;overflow-wrap:anywhere}
h2{font-size:1.2rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem}h4{font-size:1rem;margin:0 0 .4rem;overflow-wrap:anywhere}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:.3rem;color:#fff;font-size:.9em}
.badge.fail{background:var(--err)}.badge.pass{background:var(--ok)}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.5rem 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{border:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:var(--soft)}
td.differs{color:var(--err);font-weight:600}td.matches{color:var(--ok)}td.unknown{color:var(--muted)}
nav#filters{position:sticky;top:0;background:var(--bg);padding:.5rem 0;
border-bottom:1px solid var(--line);display:flex;flex-wrap:wrap;gap:.3rem 1rem;
align-items:center;z-index:1}
nav#filters span{color:var(--muted)}
button{font:inherit;border:1px solid var(--line);background:var(--soft);border-radius:.3rem;
padding:.1rem .6rem;cursor:pointer}
button[aria-pressed=true]{background:var(--fg);color:#fff}
.finding{border:1px solid var(--line);border-left:5px solid var(--muted);border-radius:.3rem;
padding:.7rem 1rem;margin:.8rem 0}
.finding.error{border-left-color:var(--err)}.finding.warning{border-left-color:var(--warn)}
.finding.info{border-left-color:var(--info)}
.sev{font-size:.8em;text-transform:uppercase;font-weight:700;margin-right:.4rem}
.sev.error{color:var(--err)}.sev.warning{color:var(--warn)}.sev.info{color:var(--info)}
.finding p{margin:.3rem 0;white-space:pre-line;overflow-wrap:anywhere}
.finding table{width:auto;min-width:50%}
.repro-head{display:flex;justify-content:space-between;align-items:center;margin-top:.5rem;color:var(--muted)}
pre{background:var(--soft);border:1px solid var(--line);border-radius:.3rem;padding:.6rem;
overflow:auto;margin:.3rem 0}
code{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
.status-failed,.status-errored{color:var(--err)}.status-blocked{color:var(--warn)}
.status-skipped{color:var(--muted)}.status-passed{color:var(--ok)}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
figure svg{max-width:100%;height:auto}figcaption{color:var(--muted);font-size:.9em}
footer{margin-top:2rem;color:var(--muted);font-size:.9em}
.fix-first{border:1px solid var(--line);border-left:5px solid var(--muted);border-radius:.3rem;
padding:.4rem 1rem;margin:.6rem 0;background:var(--soft)}
.fix-first.error{border-left-color:var(--err)}.fix-first.warning{border-left-color:var(--warn)}
.fix-first p{margin:.2rem 0;overflow-wrap:anywhere}
.consequences{margin:.6rem 0 0 .5rem;padding-left:.8rem;border-left:2px dashed var(--line)}
.consequences h5{margin:.2rem 0;font-size:.9rem;color:var(--muted)}
.finding.consequence{margin:.4rem 0;padding:.4rem .8rem}
.finding .cause{color:var(--muted)}
"""

JS = """
(function () {
  "use strict";
  var doc = document;
  function each(sel, fn) { Array.prototype.forEach.call(doc.querySelectorAll(sel), fn); }
  function press(group, button) {
    each('button[data-group="' + group + '"]', function (b) {
      b.setAttribute("aria-pressed", String(b === button));
    });
  }
  function bySeverity(value) {
    each(".finding", function (el) {
      // A root cause stays visible when a consequence nested in it matches.
      var nested = el.querySelector('.finding[data-severity="' + value + '"]');
      el.hidden = value !== "all" && el.getAttribute("data-severity") !== value && !nested;
    });
    each(".severity-group", function (g) {
      g.hidden = !g.querySelector(".finding:not([hidden])");
    });
  }
  function byStatus(value) {
    each(".check-group", function (g) {
      var match = value === "all" || g.getAttribute("data-status") === value;
      g.hidden = !match;
      if (match && value !== "all") { g.open = true; }
    });
  }
  function fallbackCopy(code) {
    var range = doc.createRange();
    var sel = window.getSelection();
    range.selectNodeContents(code);
    sel.removeAllRanges();
    sel.addRange(range);
    try { return doc.execCommand("copy"); } catch (e) { return false; }
  }
  function done(button, ok) {
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }
  function copy(button) {
    var code = doc.getElementById(button.getAttribute("data-copy"));
    if (!code) { return; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent).then(
        function () { done(button, true); },
        function () { done(button, fallbackCopy(code)); });
    } else {
      done(button, fallbackCopy(code));
    }
  }
  each("[data-js]", function (el) { el.hidden = false; });
  each("button[data-filter]", function (b) {
    b.addEventListener("click", function () {
      var group = b.getAttribute("data-group");
      var value = b.getAttribute("data-filter");
      press(group, b);
      if (group === "severity") { bySeverity(value); } else { byStatus(value); }
    });
  });
  each("button.copy", function (b) { b.addEventListener("click", function () { copy(b); }); });
}());
"""


def csp_hash(source: str) -> str:
    """The CSP source expression ('sha256-...') allowing exactly this inline block."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy() -> str:
    """No network at all; only our own inline script and style; images only as data: URIs."""
    return "; ".join([
        "default-src 'none'",
        f"script-src {csp_hash(JS)}",
        f"style-src {csp_hash(CSS)}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ])
