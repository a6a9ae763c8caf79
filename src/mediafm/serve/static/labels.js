// mediafm explorer: the tag loop (`mediafm serve STORE --workspace DIR`). Label clips of the open
// title (drag over shots, then P / N / U), fit the tag's head in the background, review its
// best-scoring clips or the ones it is least sure of (Y / N / J / K). Uses app.js's helpers
// (state, $, el, getJSON, fmt, thumbUrl, openTitle); every string is rendered with textContent.
"use strict";

const tags = { list: [], tag: null, sel: null, dragFrom: null, labels: [], review: [], focus: 0, polling: null };
const tagUrl = (t) => `/api/tags/${enc(t)}`;

async function sendJSON(method, url, body) {
  const response = await fetch(url, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch (e) { /* no body */ }
  if (!response.ok) {
    const detail = data && data.detail !== undefined ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : response.statusText;
    throw new Error(detail);
  }
  return data;
}

function tagMessage(text) { $("fit-status").textContent = text; }

async function loadTags(select = null) {
  let data;
  try { data = await getJSON("/api/tags"); } catch (e) { return; }  // served without --workspace
  $("tags-panel").hidden = false;
  tags.list = data.tags;
  const box = $("tag-select");
  box.replaceChildren();
  for (const t of data.tags) box.append(el("option", { value: t.tag }, t.name));
  const want = select || localStorage.getItem("mediafm-tag");
  tags.tag = data.tags.some((t) => t.tag === want) ? want : (data.tags[0] ? data.tags[0].tag : null);
  box.value = tags.tag || "";
  $("tag-embedding").textContent = `heads are fitted on ${data.embedding} embeddings; files in ${data.workspace}`;
  showTag(data.tags.find((t) => t.tag === tags.tag) || null);
  await refreshTitle();
}

// Counts, what a fit still needs, the fitted head's CV metric, and the state of a running fit.
function showTag(summary) {
  const has = summary !== null;
  for (const id of ["fit-button", "top-button", "unsure-button"]) $(id).disabled = !has;
  $("label-bar").hidden = !has;
  if (!has) { $("tag-counts").textContent = "Create a tag to start labelling."; tagMessage(""); return; }
  localStorage.setItem("mediafm-tag", summary.tag);
  $("tag-counts").textContent = `${summary.positives} positive · ${summary.negatives} negative labels in ${summary.titles} titles`;
  const fit = summary.fit;
  let text;
  if (fit.state === "running") text = `fitting… ${fit.seconds.toFixed(1)} s (${fit.stage})`;
  else if (fit.state === "failed") text = fit.message;
  else if (summary.fitted) {
    const f = summary.fitted;
    text = `head: cross-validated ${f.metric.toUpperCase()} ${f.value.toFixed(3)} [${f.ci_low.toFixed(3)}, ${f.ci_high.toFixed(3)}] ` +
      `over ${f.n_titles} titles, fitted on ${f.n_labels} labels` +
      (summary.changed_since_fit ? `; ${summary.changed_since_fit} label${summary.changed_since_fit === 1 ? "" : "s"} changed since: fit again` : "");
  } else text = summary.needed || "Ready to fit.";
  if (summary.needed && !summary.fitted && fit.state !== "running") text = summary.needed;
  tagMessage(text);
  $("fit-status").dataset.state = fit.state;
}

async function refreshSummary() {
  if (!tags.tag) return null;
  const s = await getJSON(tagUrl(tags.tag));
  const i = tags.list.findIndex((t) => t.tag === s.tag);
  if (i >= 0) tags.list[i] = s;
  showTag(s);
  return s;
}

async function createTag(event) {
  event.preventDefault();
  const name = $("tag-name").value.trim();
  if (!name) return;
  try {
    const s = await sendJSON("POST", "/api/tags", { name });
    $("tag-name").value = "";
    await loadTags(s.tag);
  } catch (e) { tagMessage(`Could not create the tag: ${e.message}`); }
}

// ------------------------------------------------------------------ labelling the open title
async function refreshTitle() {
  tags.labels = [];
  if (tags.tag && state.title) {
    try { tags.labels = await getJSON(`${tagUrl(tags.tag)}/labels?title=${enc(state.title)}`); } catch (e) { tags.labels = []; }
  }
  markCards();
  drawTagLane();
}

function shotRange(label) {
  // The shots a clip covers: the overlap rule of the labels format (a shot counts if any of it is inside).
  const idx = [];
  state.shots.forEach((s, i) => { if (s.start_s < label.end && s.end_s > label.start) idx.push(i); });
  return idx;
}

function markCards() {
  const mark = new Map();
  for (const lb of tags.labels) for (const i of shotRange(lb)) mark.set(i, lb.answer);
  for (const card of $("timeline").children) {
    const i = Number(card.dataset.shot);
    card.classList.toggle("lab-pos", mark.get(i) === 1);
    card.classList.toggle("lab-neg", mark.get(i) === 0);
    card.classList.toggle("in-sel", tags.sel !== null && i >= tags.sel[0] && i <= tags.sel[1]);
  }
  const bar = $("label-selection");
  if (tags.sel === null) bar.textContent = "Drag over shots in the timeline to select a clip.";
  else {
    const [a, b] = tags.sel;
    bar.textContent = `Selected: shot${a === b ? "" : "s"} #${a}${a === b ? "" : "–#" + b} (${fmt(state.shots[a].start_s)}–${fmt(state.shots[b].end_s)})`;
  }
}

async function drawTagLane() {
  const lane = $("lane-tag");
  lane.replaceChildren();
  const summary = tags.list.find((t) => t.tag === tags.tag);
  if (!summary || !summary.fitted || !state.title || !state.shots.length) { lane.hidden = true; return; }
  let data;
  const tid = state.title;
  try { data = await getJSON(`${tagUrl(tags.tag)}/titles/${enc(tid)}`); } catch (e) { lane.hidden = true; return; }
  if (tid !== state.title) return;
  lane.hidden = false;
  const total = state.shots[state.shots.length - 1].end_s || 1;
  const scores = data.shots.map((s) => s.score);
  const [lo, hi] = [Math.min(...scores), Math.max(...scores)];
  for (const s of data.shots) {
    const shot = state.shots[s.shot_index];
    if (!shot) continue;
    const bar = el("div", { class: "tagbar", "data-shot": String(s.shot_index), title: `${summary.name} #${s.shot_index}: ${s.score.toFixed(3)}` });
    bar.style.left = `${(100 * shot.start_s) / total}%`;
    bar.style.width = `${(100 * (shot.end_s - shot.start_s)) / total}%`;
    bar.style.height = `${10 + 90 * ((s.score - lo) / (hi - lo || 1))}%`;
    lane.append(bar);
  }
}

async function labelSelection(answer) {
  if (!tags.tag || tags.sel === null || !state.title) return;
  const [a, b] = tags.sel;
  const clip = { title: state.title, start: state.shots[a].start_s, end: state.shots[b].end_s, answer };
  try {
    const s = await sendJSON("PUT", `${tagUrl(tags.tag)}/labels`, clip);
    showTag(s);
    const i = tags.list.findIndex((t) => t.tag === s.tag);
    if (i >= 0) tags.list[i] = s;
    await refreshTitle();
  } catch (e) { tagMessage(`Not labelled: ${e.message}`); }
}

function onCardDown(event) {
  const card = event.target.closest(".card");
  if (!card || event.button !== 0) return;
  tags.dragFrom = Number(card.dataset.shot);
  tags.sel = [tags.dragFrom, tags.dragFrom];
  markCards();
  event.preventDefault();  // no native image drag; it also keeps the focus where it was, so:
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();  // P/N/U act now
}

function onCardOver(event) {
  if (tags.dragFrom === null) return;
  const card = event.target.closest(".card");
  if (!card) return;
  const i = Number(card.dataset.shot);
  tags.sel = [Math.min(tags.dragFrom, i), Math.max(tags.dragFrom, i)];
  markCards();
}

// ------------------------------------------------------------------ fitting
async function startFit() {
  if (!tags.tag) return;
  try {
    const s = await sendJSON("POST", `${tagUrl(tags.tag)}/fit`, {});
    showTag(s);
    pollFit();
  } catch (e) { tagMessage(e.message); }
}

function pollFit() {
  clearTimeout(tags.polling);
  tags.polling = setTimeout(async () => {
    let s = null;
    try { s = await refreshSummary(); } catch (e) { tagMessage(`fit state unknown: ${e.message}`); return; }
    if (s && s.fit.state === "running") pollFit();
    else drawTagLane();
  }, 400);
}

// ------------------------------------------------------------------ review lists
async function showReview(kind) {
  if (!tags.tag) return;
  const box = $("review");
  $("review-section").hidden = false;
  $("review-title").textContent = kind === "top" ? "Best-scoring clips across the catalog" : "Where the head is least sure (label these next)";
  box.replaceChildren(el("p", { class: "muted" }, "scoring the catalog…"));
  try {
    const data = await getJSON(`${tagUrl(tags.tag)}/${kind === "top" ? "top?k=20" : "suggestions?k=10"}`);
    tags.review = data.clips.map((c) => ({ ...c, answer: null }));
    tags.focus = 0;
    $("review-note").textContent = `${data.clips.length} clips, scored in ${(data.seconds * 1000).toFixed(0)} ms. Y = yes, N = no, J / K = next / previous; click a clip to open it.`;
    drawReview();
  } catch (e) {
    tags.review = [];
    box.replaceChildren(el("p", { class: "muted" }, e.message));
    $("review-note").textContent = "";
  }
}

function drawReview() {
  const box = $("review");
  box.replaceChildren();
  tags.review.forEach((c, i) => {
    const item = el("div", { class: "card review", "data-index": String(i) });
    item.classList.toggle("focused", i === tags.focus);
    if (c.answer !== null) item.classList.add(c.answer ? "answered-yes" : "answered-no");
    const img = el("img", { src: thumbUrl(c.title, c.first_shot), alt: `${c.title} shot ${c.first_shot}`, loading: "lazy" });
    img.addEventListener("error", () => img.replaceWith(el("div", { class: "nothumb" })));
    item.append(img, el("span", { class: "score" }, c.score.toFixed(3)));
    item.append(el("div", { class: "when" }, `${c.title} · #${c.first_shot}${c.last_shot > c.first_shot ? "–#" + c.last_shot : ""} · ${fmt(c.start)}–${fmt(c.end)}`));
    const yes = el("button", { type: "button", class: "yes" }, "✓ yes");
    const no = el("button", { type: "button", class: "no" }, "✗ no");
    yes.addEventListener("click", (e) => { e.stopPropagation(); answerReview(i, 1); });
    no.addEventListener("click", (e) => { e.stopPropagation(); answerReview(i, 0); });
    item.append(el("div", { class: "answer" }, c.answer === null ? "" : (c.answer ? "labelled yes" : "labelled no")), yes, no);
    item.addEventListener("click", () => { tags.focus = i; drawReview(); openTitle(c.title, c.first_shot); });
    box.append(item);
  });
}

async function answerReview(i, answer) {
  const c = tags.review[i];
  if (!c || !tags.tag) return;
  try {
    const s = await sendJSON("PUT", `${tagUrl(tags.tag)}/labels`, { title: c.title, start: c.start, end: c.end, answer });
    c.answer = answer;
    showTag(s);
    const j = tags.list.findIndex((t) => t.tag === s.tag);
    if (j >= 0) tags.list[j] = s;
    const next = tags.review.findIndex((x, k) => k > i && x.answer === null);
    tags.focus = next >= 0 ? next : i;
    drawReview();
    if (c.title === state.title) refreshTitle();
  } catch (e) { tagMessage(`Not labelled: ${e.message}`); }
}

function onKey(event) {
  if (!tags.tag || event.ctrlKey || event.metaKey || event.altKey) return;
  const t = event.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
  const key = event.key.toLowerCase();
  const reviewing = !$("review-section").hidden && tags.review.length;
  if (reviewing && (key === "y" || (key === "n" && tags.sel === null))) { answerReview(tags.focus, key === "y" ? 1 : 0); return; }
  if (reviewing && (key === "j" || key === "k")) {
    tags.focus = Math.max(0, Math.min(tags.review.length - 1, tags.focus + (key === "j" ? 1 : -1)));
    drawReview();
    return;
  }
  if (tags.sel === null) return;
  if (key === "p") labelSelection(1);
  else if (key === "n") labelSelection(0);
  else if (key === "u") labelSelection(null);
  else if (key === "escape") { tags.sel = null; markCards(); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("tag-form").addEventListener("submit", createTag);
  $("tag-select").addEventListener("change", async () => {
    tags.tag = $("tag-select").value || null;
    await refreshSummary();
    tags.review = [];
    $("review-section").hidden = true;
    await refreshTitle();
  });
  $("fit-button").addEventListener("click", startFit);
  $("top-button").addEventListener("click", () => showReview("top"));
  $("unsure-button").addEventListener("click", () => showReview("unsure"));
  $("label-pos").addEventListener("click", () => labelSelection(1));
  $("label-neg").addEventListener("click", () => labelSelection(0));
  $("label-clear").addEventListener("click", () => labelSelection(null));
  $("timeline").addEventListener("mousedown", onCardDown);
  $("timeline").addEventListener("mouseover", onCardOver);
  document.addEventListener("mouseup", () => { tags.dragFrom = null; });
  document.addEventListener("keydown", onKey);
  document.addEventListener("title-opened", () => { tags.sel = null; refreshTitle(); });
  loadTags().then(() => { const s = tags.list.find((t) => t.tag === tags.tag); if (s && s.fit.state === "running") pollFit(); });
});
