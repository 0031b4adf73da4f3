"""The review page (edgecam/sinks/web/review.py serves it): events newest first with their
thumbnails, filters, a player for an event's clip (from its pre-roll) or its snapshot, CSV
links, and the counts per hour and per day, drawn here as SVG (no JS library: /api/chart.svg).
The page holds no data: its script asks the API (with the view's token, where the page has the
view's AUTH_JS). Names that come from the user (labels, lines, zones) are escaped in the SVG and
set as text by the JS."""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Dict, List, Tuple

from edgecam.sinks.web.page import AUTH_JS
from edgecam.sinks.web.teach_page import TEACH_HTML, TEACH_JS

W, H, PAD = 640, 160, 28
COLOURS = ("#4cf", "#fc4", "#f86", "#8f8", "#c8f", "#fff", "#f4c", "#4fc")
MAX_SERIES = len(COLOURS)


def chart(rows: List[dict], by: str, title: str) -> str:
    """Counts per bucket as an SVG of one polyline per line/zone, direction and label."""
    series: Dict[Tuple[str, str, str], Dict[int, int]] = {}
    for r in rows:
        series.setdefault((r["place"], r["what"], r["label"]), {})[r["t"]] = r["n"]
    buckets = sorted({t for s in series.values() for t in s})
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{html.escape(title)}"><text x="4" y="14" fill="#999" font-size="12">'
            f'{html.escape(title)}</text>')
    if not buckets:
        return (head + f'<text x="{W // 2}" y="{H // 2}" fill="#666" text-anchor="middle">'
                'nothing counted yet</text></svg>')
    top = max(n for s in series.values() for n in s.values())
    x = {t: PAD + (W - 2 * PAD) * (i / max(1, len(buckets) - 1)) for i, t in enumerate(buckets)}
    parts = [head, f'<text x="2" y="{PAD}" fill="#999" font-size="11">{top}</text>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#444"/>']
    fmt = "%H:00" if by == "hour" else "%m-%d"
    for t in (buckets[0], buckets[-1]):
        parts.append(f'<text x="{x[t]:.0f}" y="{H - 8}" fill="#999" font-size="11" text-anchor="middle">'
                     f'{dt.datetime.fromtimestamp(t).strftime(fmt)}</text>')
    for i, (key, values) in enumerate(sorted(series.items())[:MAX_SERIES]):
        points = " ".join(f"{x[t]:.1f},{H - PAD - (H - 2 * PAD) * values.get(t, 0) / top:.1f}" for t in buckets)
        colour = COLOURS[i]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        parts.append(f'<text x="{W - PAD}" y="{14 + 13 * i}" fill="{colour}" font-size="11" text-anchor="end">'
                     f'{html.escape(f"{key[0]} {key[1]} ({key[2]}): {sum(values.values())}")}</text>')
    return "".join(parts) + "</svg>"


def review_page(pre_s: float) -> bytes:
    """The page (no data in it: its script asks the API, behind the view's token)."""
    return PAGE.replace("%PRE%", json.dumps(pre_s)).replace("%AUTH%", AUTH_JS + TEACH_JS).replace(
        "%TEACH_HTML%", TEACH_HTML).encode()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>edgecam review</title>
<style>
 body{margin:0;background:#111;color:#ddd;font:15px system-ui,sans-serif;padding:8px 14px}
 a{color:#9cf} h1{font-size:18px;margin:8px 0 4px} form{margin:6px 0} select,button,input{font-size:14px}
 #events{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:8px}
 #events li{background:#222;padding:4px;width:200px;cursor:pointer;font-size:13px}
 #events li img{width:200px;height:auto;display:block;background:#000;min-height:60px}
 #events li.clip{outline:1px solid #4cf} #player video,#player img{max-width:100%;max-height:60vh}
 .chart{background:#000;max-width:100%;height:auto;display:block;margin:4px 0}
</style></head><body>
<h1>edgecam review</h1><a href="/">back to the live view</a>
<div id="charts"><img id="chart_hour" class="chart" alt="counts per hour"><img id="chart_day" class="chart"
 alt="counts per day"></div>
<form id="filter">label <select name="label" id="label"><option value="">any</option></select>
 line/zone <select name="place" id="place"><option value="">any</option></select>
 from <input name="since" type="datetime-local"> to <input name="until" type="datetime-local">
 <button>show</button>
 <a id="csv_events" href="/api/events?format=csv&amp;limit=1000">events CSV</a>
 <a id="csv_counts" href="/api/counts?format=csv&amp;by=hour">counts CSV (per hour)</a></form>
<div id="player" hidden><div id="caption"></div><video id="video" controls playsinline muted></video>
 <img id="still" alt="the event's snapshot" hidden></div>
%TEACH_HTML%
<div id="msg"></div>
<ul id="events"></ul>
<script>%AUTH%
const $ = id => document.getElementById(id);
const PRE = %PRE%;
// the view's token, where this page has the web view's AUTH_JS: api() for the JSON, and one
// ticket for every /api/ URL the page sets on <img>, <video> and links (asked again after 2 min)
const ask = path => typeof api === "function" ? api(path) : fetch(path, {cache: "no-store"});
let folder = null;
async function link(path) {
  if (typeof ticketFor !== "function") return path;
  if (!folder || Date.now() > folder.until) folder = {ticket: await ticketFor("/api/"), until: Date.now() + 120000};
  return withTicket(path, folder.ticket);
}
function query() {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData($("filter"))) if (v) q.set(k, v);
  return q;
}
function play(e) {
  $("player").hidden = false;
  $("caption").textContent = describe(e);
  const video = $("video"), still = $("still");
  if (e.clip) {
    still.hidden = true; video.hidden = false;
    video.onloadedmetadata = () => {
      video.currentTime = Math.max(0, (e.clip_at || 0) - PRE);
      video.play().catch(() => {});
    };
    link("/api/clips/" + e.clip).then(u => { video.src = u; });
  } else {
    video.pause(); video.removeAttribute("src"); video.hidden = true;
    still.hidden = !e.snapshot;
    if (e.snapshot) link("/api/events/" + e.id + ".jpg").then(u => { still.src = u; });
  }
}
function describe(e) {
  return [e.time, e.event, e.label, e.place ? "at " + e.place : "", e.direction || "",
          e.clip ? "(clip)" : ""].filter(Boolean).join(" ");
}
async function load() {
  const q = query();
  q.set("limit", "200");
  const r = await ask("/api/events?" + q);
  if (!r.ok) { $("msg").textContent = await r.text(); return []; }
  $("msg").textContent = "";
  const list = $("events"), events = (await r.json()).events;
  list.replaceChildren();
  for (const e of events) {
    const li = document.createElement("li");
    if (e.clip) li.className = "clip";
    if (e.snapshot) {
      const img = document.createElement("img");
      img.loading = "lazy"; img.alt = e.event + " " + (e.label || "");
      link("/api/events/" + e.id + ".jpg").then(u => { img.src = u; });
      li.append(img);
    }
    li.append(describe(e));
    if (e.crop && taughtSet) {      // its clean crop can join the taught set
      const row = document.createElement("div");
      teachButtons(row, {event: e.id}, e.detected_as || e.label);
      li.append(row);
    }
    li.onclick = () => play(e);
    list.append(li);
  }
  if (!list.children.length) $("msg").textContent = "no events for these filters";
  q.delete("limit"); q.set("format", "csv");
  $("csv_events").href = await link("/api/events?" + q + "&limit=1000");
  q.delete("label"); q.delete("place");
  $("csv_counts").href = await link("/api/counts?" + q + "&by=hour");
  return events;
}
$("filter").onsubmit = ev => { ev.preventDefault(); load(); };
async function filters() {   // the labels and lines/zones the history holds, as the filters' options
  const r = await ask("/api/labels");
  if (!r.ok) return;
  const known = await r.json();
  for (const [id, names] of [["label", known.labels], ["place", known.places]]) {
    for (const name of names) {
      const o = document.createElement("option");
      o.value = name; o.textContent = name;
      $(id).append(o);
    }
  }
}
let taughtSet = null;
for (const by of ["hour", "day"]) link("/api/chart.svg?by=" + by).then(u => { $("chart_" + by).src = u; });
filters();
examples().then(t => { taughtSet = t && t.set; }, () => {})   // (the teach buttons need to know first)
.then(load).then(events => {        // review#event=ID: that event, played at once
  const id = Number((location.hash.match(/event=([0-9]+)/) || [])[1]);
  const e = events.find(x => x.id === id);
  if (e) play(e);
});
</script></body></html>
"""
