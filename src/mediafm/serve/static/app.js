// mediafm explorer: vanilla JS, no build step. Every string from the API is rendered with
// textContent (never innerHTML), so subtitle text and file names cannot inject markup.
"use strict";

const state = { title: null, shots: [], selected: null, map: null, stopAt: null, opening: 0, heads: [], pred: null, predUrl: null, playing: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.stringify((await response.json()).detail); } catch (e) { /* not JSON */ }
    throw new Error(`${response.status} ${detail}`);
  }
  return response.json();
}

const enc = encodeURIComponent;
const titleUrl = (tid) => `/api/titles/${enc(tid)}`;
const thumbUrl = (tid, i) => `${titleUrl(tid)}/shots/${i}/thumb.jpg`;
const fmt = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(2).padStart(5, "0")}`;

function status(message) { $("status").textContent = message; }

// A shot card: thumbnail, time span, text, tags; `onClick` selects it.
function shotCard(tid, shot, { score = null, showTitle = false, onClick }) {
  const card = el("div", { class: "card", "data-title": tid, "data-shot": String(shot.shot_index) });
  const img = el("img", { src: thumbUrl(tid, shot.shot_index), alt: `shot ${shot.shot_index}`, loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(el("div", { class: "nothumb" })));
  card.append(img);
  if (score !== null) card.append(el("span", { class: "score" }, score.toFixed(3)));
  const when = `${showTitle ? tid + " · " : ""}#${shot.shot_index} ${fmt(shot.start_s)}–${fmt(shot.end_s)}`;
  card.append(el("div", { class: "when" }, when));
  if (shot.text) card.append(el("div", { class: "text" }, shot.text));
  const tags = el("div", { class: "tags" });
  for (const t of shot.video_tags || []) tags.append(el("span", { class: "tag" }, t));
  for (const t of shot.audio_tags || []) tags.append(el("span", { class: "tag audio" }, t));
  if (tags.childElementCount) card.append(tags);
  card.addEventListener("click", onClick);
  return card;
}

async function loadCatalog() {
  const titles = await getJSON("/api/titles");
  const list = $("catalog");
  list.replaceChildren();
  for (const t of titles) {
    const li = el("li", { "data-title": t.title_id }, t.title_id);
    li.append(el("span", { class: "meta" }, `${t.n_shots} shots · ${fmt(t.duration_s)} · ${t.name}`));
    li.addEventListener("click", () => openTitle(t.title_id));
    list.append(li);
  }
  status(titles.length ? `${titles.length} titles` : "The store has no titles yet.");
  if (titles.length) await openTitle(titles[0].title_id);
}

async function openTitle(tid, selectShot = null) {
  // A later click wins: responses of an earlier, slower openTitle are dropped, not drawn over it.
  const ticket = ++state.opening;
  const detail = await getJSON(titleUrl(tid));
  if (ticket !== state.opening) return;
  state.title = tid;
  state.shots = detail.shots;
  state.selected = null;
  for (const li of $("catalog").children) li.classList.toggle("active", li.dataset.title === tid);
  $("title-section").hidden = false;
  $("title-name").textContent = `${detail.title.title_id} (${detail.title.name})`;
  $("neighbors-section").hidden = true;
  const player = $("player");
  player.removeAttribute("src");
  player.load();
  $("shot-info").textContent = "";
  state.playing = null;
  const timeline = $("timeline");
  timeline.replaceChildren();
  for (const shot of detail.shots) {
    timeline.append(shotCard(tid, shot, { onClick: () => selectShot_(shot.shot_index) }));
  }
  document.dispatchEvent(new CustomEvent("title-opened", { detail: tid }));  // labels.js marks the labels
  state.map = null;
  state.pred = null;  // the last title's scores, clips and breaks are gone too
  state.predUrl = null;
  drawStrip();
  const canvas = $("map");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);  // the last title's map is gone
  if (detail.embeddings.includes("fused")) {
    let map = null;
    try { map = await getJSON(`${titleUrl(tid)}/map?embedding=fused`); } catch (e) { status(String(e)); }
    if (ticket !== state.opening) return;
    state.map = map;
  }
  drawMap();
  loadPredictions();  // has its own ticket; the shot asked for is shown without waiting for it
  if (selectShot !== null) await selectShot_(selectShot);
}

// ------------------------------------------------------------------ predictions of trained heads
async function loadHeads() {
  try { state.heads = await getJSON("/api/heads"); } catch (e) { state.heads = []; status(String(e)); }
  const select = $("head-select");
  select.replaceChildren(el("option", { value: "" }, "none (scenes only)"));
  for (const h of state.heads) {
    select.append(el("option", { value: h.name }, `${h.name} · ${h.task} · ${h.embedding} (CV ${h.metric} ${h.value === null ? "n/a" : h.value.toFixed(3)})`));
  }
  const first = state.heads.find((h) => h.task !== "scenes") || state.heads[0];
  select.value = first ? first.name : "";
  fillClasses();
}

function fillClasses() {
  const head = state.heads.find((h) => h.name === $("head-select").value);
  const multi = head && (head.task === "multiclass" || head.task === "multilabel");
  $("class-label").hidden = !multi;
  const select = $("class-select");
  select.replaceChildren();
  if (multi) for (const c of head.classes) select.append(el("option", { value: c }, c));
}

async function loadPredictions() {
  const tid = state.title;
  if (!tid) return;
  const params = new URLSearchParams();
  const head = $("head-select").value;
  if (head) params.set("head", head);
  if (!$("class-label").hidden && $("class-select").value) params.set("cls", $("class-select").value);
  const spacing = $("spacing-input").value;
  if (spacing !== "") params.set("spacing", spacing);
  const url = `${titleUrl(tid)}/predictions?${params}`;
  // An edited input fires "change" again when it loses focus, e.g. to the play button a user clicks next:
  // redrawing the same predictions then would replace that button between mouse-down and mouse-up and
  // swallow the click. The URL asked for last is also what a response must match to be drawn (a later
  // request or another title, whose openTitle clears it, wins).
  if (url === state.predUrl) return;
  state.predUrl = url;
  let pred = null;
  try {
    pred = await getJSON(url);
  } catch (e) {
    if (url !== state.predUrl) return;
    state.pred = null;
    state.predUrl = null;
    drawStrip();
    $("pred-legend").textContent = `No predictions: ${e.message}`;
    return;
  }
  if (url !== state.predUrl) return;
  state.pred = pred;
  if ($("spacing-input").value === "") $("spacing-input").value = String(pred.break_spacing_s);
  drawStrip();
}

// The timeline strip: per-shot score bars, scene boundaries, ad-break dots, proposed clips.
function drawStrip() {
  const lanes = ["lane-scores", "lane-marks", "lane-clips"].map($);
  lanes.forEach((l) => l.replaceChildren());
  for (const m of $("strip").querySelectorAll(".scene")) m.remove();
  $("clip-list").replaceChildren();
  const pred = state.pred;
  if (!pred || !state.shots.length) { $("pred-legend").textContent = ""; return; }
  const total = state.shots[state.shots.length - 1].end_s || 1;
  const pct = (t) => `${(100 * t) / total}%`;
  const scores = pred.shots.map((s) => s.score);
  const [lo, hi] = [Math.min(...scores), Math.max(...scores)];
  for (const s of pred.shots) {
    const bar = el("div", { class: "bar", "data-shot": String(s.shot_index), title: `shot #${s.shot_index}: ${s.score.toFixed(3)}` });
    bar.style.left = pct(s.start_s);
    bar.style.width = pct(s.end_s - s.start_s);
    bar.style.height = `${10 + 90 * ((s.score - lo) / (hi - lo || 1))}%`;
    bar.classList.toggle("selected", s.shot_index === state.selected);
    bar.addEventListener("click", () => selectShot_(s.shot_index));
    lanes[0].append(bar);
  }
  for (const m of pred.scenes) {
    const line = el("div", { class: "scene", "data-shot": String(m.shot_index), title: `scene starts ${fmt(m.time_s)}` });
    line.style.left = pct(m.time_s);
    $("strip").append(line);
  }
  for (const b of pred.breaks) {
    const dot = el("div", { class: "break", "data-shot": String(b.shot_index), title: `ad break ${fmt(b.time_s)}: ${b.score.toFixed(3)}` });
    dot.style.left = pct(b.time_s);
    lanes[1].append(dot);
  }
  for (const c of pred.clips) {
    const span = el("div", { class: "clip", "data-rank": String(c.rank), title: `clip #${c.rank}: ${c.score.toFixed(3)}` });
    span.classList.toggle("playing", c.rank === state.playing);  // a redraw keeps the clip being played
    span.style.left = pct(c.start_s);
    span.style.width = pct(c.end_s - c.start_s);
    span.addEventListener("click", () => playClip(c));
    lanes[2].append(span);
    const item = el("li", { "data-rank": String(c.rank) });
    const button = el("button", { type: "button" }, "▶ play");
    button.addEventListener("click", () => playClip(c));
    item.append(button, el("span", {}, ` ${fmt(c.start_s)}–${fmt(c.end_s)} · score ${c.score.toFixed(3)}`));
    $("clip-list").append(item);
  }
  const what = pred.head ? `${pred.head}${pred.cls ? " · " + pred.cls : ""}: bars = score per shot; green = top clips; ` +
    `red = ad breaks (at least ${pred.break_spacing_s} s apart); ` : "";
  $("pred-legend").textContent = `${what}grey lines = scene boundaries (${pred.scene_method || "none"}).`;
}

function playClip(clip) {
  state.playing = clip.rank;
  for (const s of $("lane-clips").children) s.classList.toggle("playing", Number(s.dataset.rank) === clip.rank);
  playSpan(clip.start_s, clip.end_s);
  $("shot-info").textContent = `clip #${clip.rank}: ${fmt(clip.start_s)}–${fmt(clip.end_s)} · score ${clip.score.toFixed(3)}`;
}

// Media fragment #t=start,end: the browser fetches just that span with HTTP range requests.
function playSpan(start, end) {
  const player = $("player");
  state.stopAt = end;
  player.src = `${titleUrl(state.title)}/video#t=${start.toFixed(3)},${end.toFixed(3)}`;
  player.play().catch(() => { /* autoplay may be blocked; the user can press play */ });
}

async function selectShot_(index) {
  const tid = state.title;
  const shot = state.shots[index];
  if (!shot) return;
  state.selected = index;
  for (const card of $("timeline").children) card.classList.toggle("selected", Number(card.dataset.shot) === index);
  drawMap();
  for (const bar of $("lane-scores").children) bar.classList.toggle("selected", Number(bar.dataset.shot) === index);
  state.playing = null;
  for (const span of $("lane-clips").children) span.classList.remove("playing");
  playSpan(shot.start_s, shot.end_s);
  $("shot-info").textContent = `shot #${index}: ${fmt(shot.start_s)}–${fmt(shot.end_s)}${shot.text ? " · " + shot.text : ""}`;
  const box = $("neighbors");
  box.replaceChildren();
  $("neighbors-section").hidden = false;
  try {
    const hits = await getJSON(`${titleUrl(tid)}/shots/${index}/neighbors?k=12`);
    for (const h of hits) {
      box.append(shotCard(h.title_id, h, { score: h.score, showTitle: true, onClick: () => openTitle(h.title_id, h.shot_index) }));
    }
  } catch (e) {
    box.append(el("p", { class: "muted" }, `No neighbours: ${e.message}`));
  }
}

function drawMap() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const pts = state.map ? state.map.points : [];
  if (!pts.length) {
    ctx.fillStyle = "#6b7280";
    ctx.fillText("no embeddings for this title", 10, 20);
    return;
  }
  const pad = 16;
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (canvas.width - 2 * pad);
  const sy = (y) => canvas.height - pad - ((y - y0) / (y1 - y0 || 1)) * (canvas.height - 2 * pad);
  const tmax = Math.max(...pts.map((p) => p.start_s)) || 1;
  state.screen = pts.map((p) => ({ i: p.shot_index, x: sx(p.x), y: sy(p.y) }));
  ctx.strokeStyle = "rgba(100,116,139,0.35)";
  ctx.beginPath();
  state.screen.forEach((p, j) => (j ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
  ctx.stroke();
  pts.forEach((p, j) => {
    const hue = 240 - 240 * (p.start_s / tmax); // blue (start) -> red (end)
    const s = state.screen[j];
    ctx.beginPath();
    ctx.fillStyle = `hsl(${hue}, 75%, 50%)`;
    ctx.arc(s.x, s.y, p.shot_index === state.selected ? 7 : 4, 0, 2 * Math.PI);
    ctx.fill();
    if (p.shot_index === state.selected) { ctx.strokeStyle = "#111"; ctx.stroke(); }
  });
}

function onMapClick(event) {
  if (!state.screen) return;
  const r = event.target.getBoundingClientRect();
  const x = event.clientX - r.left, y = event.clientY - r.top;
  let best = null, bestD = 100;
  for (const p of state.screen) {
    const d = (p.x - x) ** 2 + (p.y - y) ** 2;
    if (d < bestD) { best = p; bestD = d; }
  }
  if (best) selectShot_(best.i);
}

async function onSearch(event) {
  event.preventDefault();
  const q = $("search-input").value.trim();
  if (!q) return;
  const box = $("results");
  $("results-section").hidden = false;
  $("results-query").textContent = `for “${q}”`;
  box.replaceChildren(el("p", { class: "muted" }, "searching…"));
  try {
    const hits = await getJSON(`/api/search?q=${enc(q)}&k=12`);
    box.replaceChildren();
    if (!hits.length) box.append(el("p", { class: "muted" }, "no matching shots"));
    for (const h of hits) {
      box.append(shotCard(h.title_id, h, { score: h.score, showTitle: true, onClick: () => openTitle(h.title_id, h.shot_index) }));
    }
  } catch (e) {
    box.replaceChildren(el("p", { class: "muted" }, `search failed: ${e.message}`));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", onSearch);
  $("map").addEventListener("click", onMapClick);
  // Stop at the end of the selected shot's span.
  $("player").addEventListener("timeupdate", (e) => {
    if (state.stopAt !== null && e.target.currentTime >= state.stopAt) { e.target.pause(); state.stopAt = null; }
  });
  $("head-select").addEventListener("change", () => { fillClasses(); loadPredictions(); });
  $("class-select").addEventListener("change", loadPredictions);
  $("spacing-input").addEventListener("change", loadPredictions);
  // The catalog loads whatever happens to the heads' list.
  loadHeads().catch((e) => status(`failed to list the heads: ${e.message}`))
    .then(loadCatalog).catch((e) => status(`failed to load the catalog: ${e.message}`));
});
