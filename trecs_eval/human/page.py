"""The judging page: the narrative, two images (optionally the trace drawn over them), one radio
group per question, keyboard shortcuts and progress. Every study value is HTML-escaped; system
names never appear (raters judge blind).

Keys: ``1``/``←`` left, ``2``/``↓`` same, ``3``/``→`` right for the current question (then the next
question is current), ``t`` shows or hides the trace, ``Enter`` submits once every question is answered.
"""

from __future__ import annotations

import html
from typing import Any

from trecs_eval.human.study import Study, Task

CHOICE_LABELS = (("left", "Left"), ("tie", "About the same"), ("right", "Right"))
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}
.narrative{font-size:1.1em;background:#f4f4f4;padding:.7em;border-radius:6px;white-space:pre-wrap}
.pair{display:flex;gap:2em;justify-content:center;margin:1em 0}
.side{text-align:center}
.frame{position:relative}
.side img{width:400px;max-width:42vw;image-rendering:auto;display:block}
.side svg{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;display:none}
body.trace .side svg{display:block}
fieldset{margin:.5em 0;border:1px solid #ccc;border-radius:6px}
fieldset.current{border:2px solid #2a6ad1}
.progress{color:#555}
"""
_SCRIPT = """
(function(){
  var started = Date.now();
  var form = document.getElementById('judgment');
  var groups = Array.prototype.slice.call(form.querySelectorAll('fieldset'));
  var current = 0;
  function mark(){
    groups.forEach(function(g,k){g.classList.toggle('current', k===current);});
    var g = groups[current];
    document.body.classList.toggle('trace', !!(g && g.dataset.trace==='1') ||
      document.getElementById('show-trace').checked);
  }
  function answered(){ return groups.every(function(g){return g.querySelector('input:checked');}); }
  function choose(value){
    var input = groups[current] && groups[current].querySelector('input[value="'+value+'"]');
    if(!input){return;}
    input.checked = true;
    if(current < groups.length-1){current += 1;}
    mark();
  }
  groups.forEach(function(g,k){g.addEventListener('change',function(){current=k; mark();});});
  document.getElementById('show-trace').addEventListener('change', mark);
  form.addEventListener('submit', function(e){
    if(!answered()){e.preventDefault(); return;}
    form.querySelector('input[name=seconds]').value = ((Date.now()-started)/1000).toFixed(2);
  });
  document.addEventListener('keydown', function(e){
    var keys = {'1':'left','ArrowLeft':'left','2':'tie','ArrowDown':'tie','3':'right','ArrowRight':'right'};
    if(keys[e.key]){e.preventDefault(); choose(keys[e.key]);}
    else if(e.key==='t'){var box=document.getElementById('show-trace'); box.checked=!box.checked; mark();}
    else if(e.key==='Enter' && answered()){e.preventDefault(); form.requestSubmit();}
  });
  mark();
})();
"""


def trace_svg(points: list[list[float]]) -> str:
    """The trace as an SVG polyline over a unit square (numbers only: nothing to escape)."""
    coords = " ".join(f"{float(x):.4f},{float(y):.4f}" for x, y in points)
    return ('<svg viewBox="0 0 1 1" preserveAspectRatio="none" aria-hidden="true">'
            f'<polyline points="{coords}" fill="none" stroke="#ffd400" stroke-width="0.012" '
            'stroke-linejoin="round" opacity="0.9"/></svg>')


def _questions(study: Study) -> str:
    out = []
    for q in study.questions:
        options = "".join(f'<label><input type="radio" name="q_{html.escape(q["id"])}" value="{v}" required> '
                          f"{label}</label> " for v, label in CHOICE_LABELS)
        out.append(f'<fieldset data-trace="{1 if q["trace_overlay"] else 0}">'
                   f'<legend>{html.escape(q["text"])}</legend>{options}</fieldset>')
    return "".join(out)


def _shell(title: str, body: str, nonce: str | None) -> str:
    attr = f' nonce="{html.escape(nonce)}"' if nonce else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width"><style{attr}>{_CSS}</style></head>'
            f"<body>{body}<script{attr}>{_SCRIPT}</script></body></html>")


def judgment_page(study: Study, task: Task, token: str, position: int, total: int, nonce: str) -> str:
    item: dict[str, Any] = study.items[task.item]
    svg = trace_svg(item["trace"])
    # the overlay shares a box with the image alone, so trace (x, y) in [0, 1] maps onto the image
    sides = "".join(f'<div class="side"><div class="frame"><img src="/{html.escape(item["images"][system])}" '
                    f'alt="{label} image">{svg}</div><div>{label}</div></div>'
                    for system, label in ((task.left, "Left"), (task.right, "Right")))
    body = (f'<p class="progress">Judgment {position} of {total}</p>'
            f'<p class="narrative">{html.escape(item["narrative"])}</p>'
            f'<div class="pair">{sides}</div>'
            f'<form id="judgment" method="post" action="/r/{html.escape(token)}/submit">'
            f'<input type="hidden" name="task" value="{html.escape(task.task)}">'
            f'<input type="hidden" name="seconds" value="">{_questions(study)}'
            '<p><label><input type="checkbox" id="show-trace"> show the trace (t)</label></p>'
            '<p><button type="submit">Submit (Enter)</button> '
            "<small>keys: 1/← left, 2/↓ same, 3/→ right</small></p></form>")
    return _shell(f"Judgment {position} of {total}", body, nonce)


def message_page(title: str, text: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>")


MTURK_SUBMIT = "https://www.mturk.com/mturk/externalSubmit"
_ASSIGNMENT = ("<script>(function(){var m=/[?&]assignmentId=([^&]*)/.exec(location.search);"
               "var id=m?decodeURIComponent(m[1]):'';document.getElementById('assignmentId').value=id;"
               "if(!id||id==='ASSIGNMENT_ID_NOT_AVAILABLE'){document.querySelector('#judgment button')"
               ".disabled=true;}})();</script>")


def crowd_template(study: Study, platform: str = "csv") -> str:
    """The same page for a crowd platform, with ``${column}`` placeholders of tasks.csv; the trace is
    drawn from ``${trace}`` by the inline script. For MTurk the form posts to MTurk's
    ``externalSubmit`` with the ``assignmentId`` of the page's address (the HTMLQuestion
    convention; submitting is disabled in preview)."""
    sides = "".join(f'<div class="side"><div class="frame"><img src="${{{col}}}" alt="{label} image">'
                    f'<svg viewBox="0 0 1 1" preserveAspectRatio="none"><polyline class="tr" fill="none" '
                    f'stroke="#ffd400" stroke-width="0.012"/></svg></div><div>{label}</div></div>'
                    for col, label in (("left_image", "Left"), ("right_image", "Right")))
    questions = _questions(study).replace('name="q_', 'name="')
    action = f' action="{MTURK_SUBMIT}"' if platform == "mturk" else ""
    assignment = '<input type="hidden" name="assignmentId" id="assignmentId" value="">' \
        if platform == "mturk" else ""
    draw = ("<script>(function(){var p=JSON.parse(document.getElementById('trace-data').textContent);"
            "var s=p.map(function(q){return q[0]+','+q[1];}).join(' ');"
            "document.querySelectorAll('polyline.tr').forEach(function(l){l.setAttribute('points',s);});"
            "})();</script>")
    body = ('<p class="narrative">${narrative_html}</p>'
            f'<div class="pair">{sides}</div>'
            '<script type="application/json" id="trace-data">${trace}</script>'
            f'<form id="judgment" method="post"{action}>'
            '<input type="hidden" name="task_id" value="${task_id}">'
            f'{assignment}<input type="hidden" name="seconds" value="">{questions}'
            '<p><label><input type="checkbox" id="show-trace"> show the trace (t)</label></p>'
            '<p><button type="submit">Submit (Enter)</button></p></form>' + draw + (
                _ASSIGNMENT if platform == "mturk" else ""))
    return _shell("Which image?", body, None)
