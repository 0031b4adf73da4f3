"""The teach panel the live page and the review page share (edgecam/sinks/web/teach.py serves
it): "this is …" and "not a …" buttons for an event or a live detection, and the taught set's
examples with their thumbnails and a remove button. It needs the view's AUTH_JS (``api()``,
``ticketFor()``, ``withTicket()``) and shows only when the run has a taught set (--teach SET)."""

from __future__ import annotations

TEACH_HTML = """<div id="teach" hidden><h2 style="font-size:16px;margin:10px 0 4px">taught set</h2>
<div id="teach_msg" style="color:#9c9;min-height:1.2em"></div><div id="teach_live"></div>
<ul id="examples" style="list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px"></ul></div>"""

TEACH_JS = r"""
async function teachPost(path, body) {   // a change: POST, JSON, the token in a header
  const r = await api(path, {method: "POST", headers: {"Content-Type": "application/json"},
                             body: JSON.stringify(body)});
  let m = "";
  try { m = (await r.json()).message; } catch (e) { m = "HTTP " + r.status; }
  document.getElementById("teach_msg").textContent = m;
  if (r.ok) setTimeout(examples, 200);
  return r.ok;
}
function teachButtons(target, what, detected) {   // what: {event: ID} or {live: INDEX, box: [...]}
  const is = document.createElement("button"), not = document.createElement("button");
  is.className = "teach"; is.textContent = "this is…";
  is.onclick = ev => {
    ev.stopPropagation();
    const label = prompt("this is a …", detected || "");
    if (label) teachPost("/api/teach", Object.assign({label: label}, what));
  };
  not.className = "teach-not"; not.textContent = "not a " + detected;
  not.onclick = ev => { ev.stopPropagation(); teachPost("/api/teach", Object.assign({not: true}, what)); };
  target.append(is, not);
}
async function examples() {   // the set's examples, each with its thumbnail and a remove button
  const r = await api("/api/teach");
  if (!r.ok) return null;
  const t = await r.json(), list = document.getElementById("examples");
  document.getElementById("teach").hidden = !t.set;
  if (!t.set) return t;
  const ticket = await ticketFor("/api/teach/");
  list.replaceChildren();
  for (const x of t.examples) {
    const li = document.createElement("li"), img = document.createElement("img");
    const b = document.createElement("button");
    img.src = withTicket("/api/teach/" + x.example.split("/").map(encodeURIComponent).join("/"), ticket);
    img.alt = x.example; img.style = "height:64px;display:block;background:#000";
    b.textContent = "remove"; b.dataset.example = x.example;
    b.onclick = () => teachPost("/api/teach/remove", {example: x.example});
    li.style = "background:#222;padding:3px;font-size:12px";
    li.append(img, x.example, " ", b);
    list.append(li);
  }
  return t;
}
async function liveTeach() {   // the latest result's detections, each with its buttons
  const t = await examples(), box = document.getElementById("teach_live");
  if (!t || !t.set) return;
  box.replaceChildren();
  for (const d of t.live) {
    const row = document.createElement("div");
    row.append((d.id !== undefined ? "#" + d.id + " " : "") + d.label + " " + d.score.toFixed(2) + " ");
    teachButtons(row, {live: d.index, box: d.box}, d.detected_as || d.label);
    box.append(row);
  }
  if (!t.live.length) box.textContent = "no detection in the latest result";
}
"""
