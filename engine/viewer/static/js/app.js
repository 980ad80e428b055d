// Ultimate Rotoscopy viewer: state, wiring, playback and keyboard.
// Frames are always the plate's own numbers; every coordinate sent is in plate pixels.

import { api, fetchBitmap, watchJob } from './api.js';
import { FrameCache, decodeIds, paintIds } from './cache.js';
import { buildForm, readForm } from './forms.js';
import { Timeline } from './timeline.js';
import { Viewport } from './viewport.js';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
};

const S = {
  sid: new URLSearchParams(location.search).get('session'),
  info: null, rev: null,
  lo: 0, hi: 0, fps: 24, frame: 0,
  inPt: null, outPt: null,
  selected: null, hidden: new Set(), selectedPrompt: null,
  overlay: true, opacity: 0.5, style: 'both', blend: 'source-over', mode: 'plate', size: 1280,
  playing: 0, speed: 1, nextDue: 0, shownTimes: [],
  job: null, edits: 0, editChain: Promise.resolve(),
  thumbs: null, lastImage: null, colours: new Map(), qc: new Map(), kinds: [],
};

// --- persistence (per session, in this browser) ---------------------------------------------

const store = {
  key(k) { return `roto.viewer.${S.sid}.${k}`; },
  get(k, d) { try { const v = localStorage.getItem(this.key(k)); return v === null ? d : JSON.parse(v); } catch (e) { return d; } },
  set(k, v) { try { localStorage.setItem(this.key(k), JSON.stringify(v)); } catch (e) { /* private mode */ } },
};

function savePrefs() {
  store.set('inout', [S.inPt, S.outPt]);
  store.set('hidden', [...S.hidden]);
  store.set('view', { opacity: S.opacity, style: S.style, blend: S.blend, size: S.size, overlay: S.overlay, selected: S.selected });
}

// --- status line ----------------------------------------------------------------------------

let statusTimer = null;
function status(text, kind = '') {
  const s = $('status');
  s.textContent = text;
  s.className = kind;
  s.title = text;
  clearTimeout(statusTimer);
  if (kind !== 'error' && text) statusTimer = setTimeout(() => { if (s.textContent === text) s.textContent = ''; }, 6000);
}
const fail = (e) => status(e && e.message ? e.message : String(e), 'error');

// --- caches ---------------------------------------------------------------------------------

function playRange() {
  return [S.inPt !== null ? S.inPt : S.lo, S.outPt !== null ? S.outPt : S.hi];
}

// How soon a frame is needed: ahead of the playhead in the play direction first (wrapping in
// the play range), then the rest by distance.
function need(f) {
  const [a, b] = playRange();
  const len = b - a + 1;
  if (f < a || f > b) return 2 * len + Math.abs(f - S.frame);
  const dir = S.playing || 1;
  const ahead = (((f - S.frame) * dir) % len + len) % len;
  return S.playing ? ahead : Math.min(ahead, len - ahead) * 1.01;
}

const base = () => `/v1/viewer/sessions/${S.sid}`;
const visibleIds = () => (S.info ? S.info.objects.filter((o) => !S.hidden.has(o.id)).map((o) => o.id) : []);

function onCacheLoad(frame) {
  if (frame === S.frame) render();
  timeline.requestDraw();
}
const onCacheError = (frame, e) => { if (frame === S.frame) fail(e); };

const plates = new FrameCache({
  urlFor: (f) => `${base()}/frames/${f}.jpg?size=${S.size}&v=${S.info ? S.info.clip.content_id.slice(0, 12) : ''}`,
  priority: need, budget: 160e6, concurrency: 4, onLoad: onCacheLoad, onError: onCacheError,
});
const overlays = new FrameCache({
  urlFor: (f) => `${base()}/overlay/${f}.png?size=${S.size}`,
  decode: decodeIds, dispose: () => {}, priority: need, budget: 120e6, concurrency: 3, cacheMode: 'no-cache',
  onLoad: onCacheLoad, onError: onCacheError,
});
const mattes = new FrameCache({
  urlFor: (f) => `${base()}/matte/${f}.png?size=${S.size}&objects=${visibleIds().join(',') || '0'}`,
  priority: need, budget: 80e6, concurrency: 3, cacheMode: 'no-cache', onLoad: onCacheLoad, onError: onCacheError,
});
const depths = new FrameCache({
  urlFor: (f) => `${base()}/depth/${f}.png?size=${S.size}`,
  priority: need, budget: 80e6, concurrency: 3, onLoad: onCacheLoad, onError: onCacheError,
});

function invalidateResults() {
  overlays.invalidate();
  mattes.invalidate();
  ensure(S.frame);
}

function imageCache() { return S.mode === 'matte' ? mattes : S.mode === 'depth' ? depths : plates; }

function frameReady(f) {
  if (!imageCache().has(f)) return false;
  return S.mode !== 'plate' || !S.overlay || overlays.has(f);
}

function ensure(f) {
  imageCache().want(f).then(() => { if (f === S.frame) render(); });
  if (S.mode === 'plate' && S.overlay) overlays.want(f).then(() => { if (f === S.frame) render(); });
}

function prefetchAround() {
  const [a, b] = playRange();
  const len = b - a + 1;
  const ahead = S.playing ? Math.min(len, Math.max(12, Math.round(S.fps * S.speed))) : 3;
  const frames = [];
  for (let i = 1; i <= ahead; i += 1) {
    let f = S.frame + i * (S.playing || 1);
    if (S.playing) f = a + ((((f - a) % len) + len) % len);
    else if (f > S.hi) break;
    frames.push(f);
    if (!S.playing && S.frame - i >= S.lo) frames.push(S.frame - i);
  }
  const keep = new Set(frames);
  imageCache().dropQueued((f) => keep.has(f));
  imageCache().prefetch(frames);
  if (S.mode === 'plate' && S.overlay) { overlays.dropQueued((f) => keep.has(f)); overlays.prefetch(frames); }
}

// --- views ----------------------------------------------------------------------------------

const viewport = new Viewport($('view'), {
  layers: () => layers(),
  onPoint: (x, y, label) => addPrompt({ kind: 'point', x, y, label }),
  onBox: (x0, y0, x1, y1) => addPrompt({ kind: 'box', x0, y0, x1, y1 }),
  onStroke: (points, mode) => paint(points, mode),
  onMovePrompt: (uid, x, y) => edit(`move point`, () => api('PATCH', `/v1/sessions/${S.sid}/prompts/${uid}`, { x, y })),
  onSelectPrompt: (uid) => { S.selectedPrompt = uid; render(); },
  onViewChange: () => hud(),
});

const timeline = new Timeline($('timeline'), {
  model: () => timelineModel(),
  onScrub: (f) => { if (S.playing) stop(); setFrame(f); },
  onScrubEnd: () => prefetchAround(),
});

function timelineModel() {
  if (!S.info) return null;
  return {
    lo: S.lo, hi: S.hi, frame: S.frame, inPt: S.inPt, outPt: S.outPt, qc: S.qc, thumbs: S.thumbs,
    cached: plates.frames(),
    objects: S.info.objects.map((o) => ({ ...o, rgb: rgbOf(o), hidden: S.hidden.has(o.id) })),
  };
}

const rgbOf = (o) => o.colour.map((c) => Math.round(c * 255));
const hexOf = (o) => '#' + rgbOf(o).map((c) => c.toString(16).padStart(2, '0')).join('');

function layers() {
  const f = S.frame;
  const cache = imageCache();
  let image = cache.get(f);
  const exact = !!image;
  if (image) S.lastImage = { image, mode: S.mode };
  else if (S.lastImage && S.lastImage.mode === S.mode) image = S.lastImage.image;
  let overlay = null;
  let overlayFresh = true;
  if (S.mode === 'plate' && S.overlay) {
    const entry = overlays.get(f);
    overlayFresh = overlays.fresh(f);
    if (entry) overlay = paintIds(entry, S.colours, S.opacity, S.style);
  }
  const prompts = S.info && S.overlay
    ? S.info.prompts.filter((p) => p.frame === f && !S.hidden.has(p.object) && p.kind !== 'mask' && p.kind !== 'text')
    : [];
  const ready = exact && overlayFresh;
  document.body.dataset.shown = ready ? String(f) : '';
  $('hud-loading').hidden = ready;
  return { image: image || null, overlay, prompts, selectedPrompt: S.selectedPrompt, colours: S.colours, blend: S.blend };
}

function render() {
  viewport.requestDraw();
  timeline.requestDraw();
  hud();
}

function hud() {
  const n = S.hi - S.lo + 1;
  $('hud-frame').textContent = S.info ? `${S.frame}  (${S.frame - S.lo + 1}/${n})` : '';
  const dpr = window.devicePixelRatio || 1;
  $('hud-zoom').textContent = `${Math.round(viewport.scale * dpr * 100)}%`;
  $('hud-mode').textContent = S.mode === 'plate' ? (S.overlay ? '' : 'overlay off') : S.mode;
  document.body.dataset.frame = String(S.frame);
  if (document.activeElement !== $('frame-input')) $('frame-input').value = String(S.frame);
}

function setFrame(f) {
  const g = Math.max(S.lo, Math.min(S.hi, Math.round(f)));
  if (g !== S.frame) S.selectedPrompt = null;
  S.frame = g;
  ensure(g);
  render();
}

// --- session info ---------------------------------------------------------------------------

async function refreshInfo(force = false) {
  const info = await api('GET', `${base()}/info`);
  const changed = force || info.rev !== S.rev;
  applyInfo(info);
  if (changed) invalidateResults();
  return info;
}

function applyInfo(info) {
  const first = !S.info;
  S.info = info;
  S.rev = info.rev;
  [S.lo, S.hi] = info.range;
  S.fps = info.clip.fps[0] / info.clip.fps[1];
  S.colours = new Map(info.objects.filter((o) => !S.hidden.has(o.id)).map((o) => [o.id, rgbOf(o)]));
  S.qc = new Map();
  for (const q of info.qc || []) {
    const list = S.qc.get(q.frame) || [];
    list.push(q);
    S.qc.set(q.frame, list);
  }
  if (first) {
    viewport.setPlate(info.clip.width, info.clip.height);
    S.frame = Math.max(S.lo, Math.min(S.hi, S.frame || S.lo));
    const name = info.clip.path.split(/[\\/]/).pop();
    $('clip-name').textContent = `${name}  ${info.clip.width}x${info.clip.height}  ${fmtFps(S.fps)} fps  ${S.lo}-${S.hi}`;
    $('clip-name').title = `${info.clip.path}\nproject ${info.project}`;
    document.title = `${name} - Ultimate Rotoscopy`;
    loadThumbs();
  }
  if (S.inPt !== null && (S.inPt < S.lo || S.inPt > S.hi)) S.inPt = null;
  if (S.outPt !== null && (S.outPt < S.lo || S.outPt > S.hi)) S.outPt = null;
  if (!info.objects.some((o) => o.id === S.selected)) S.selected = info.objects.length ? info.objects[0].id : null;
  $('undo').disabled = !info.undo.length;
  $('redo').disabled = !info.redo.length;
  $('undo').title = info.undo.length ? `Undo ${info.undo[info.undo.length - 1]} (Ctrl+Z)` : 'Nothing to undo';
  $('redo').title = info.redo.length ? `Redo ${info.redo[info.redo.length - 1]} (Ctrl+Shift+Z)` : 'Nothing to redo';
  const textOk = !info.prompt_kinds || info.prompt_kinds.includes('text');
  $('text-prompt').disabled = !textOk;
  $('text-go').disabled = !textOk;
  $('text-prompt').placeholder = textOk ? 'text prompt, e.g. person in red' : `text prompts need a backend that reads text (${info.backend} does not)`;
  document.querySelector('[data-mode=depth]').disabled = !info.depth;
  document.querySelector('[data-mode=depth]').title = info.depth ? 'Depth' : 'No depth yet: run the depth job on this session';
  if (!info.depth && S.mode === 'depth') setMode('plate');
  $('range-label').textContent = rangeText();
  renderObjects();
  qcReasons();
  render();
}

function fmtFps(f) { return Number.isInteger(f) ? String(f) : f.toFixed(3); }

function rangeText() {
  const [a, b] = playRange();
  return `${S.lo}-${S.hi}` + (S.inPt !== null || S.outPt !== null ? `  in ${a} out ${b}` : '');
}

async function loadThumbs() {
  const width = $('timeline').clientWidth || 800;
  const n = S.hi - S.lo + 1;
  const count = Math.max(1, Math.min(n, Math.floor(width / 64), 200));
  if (S.thumbs && S.thumbs.count === count) return;
  try {
    const { bitmap, headers } = await fetchBitmap(`${base()}/thumbs.jpg?count=${count}&height=72`);
    const frames = (headers.get('X-Roto-Frames') || '').split(',').filter(Boolean).map(Number);
    if (S.thumbs && S.thumbs.bitmap) S.thumbs.bitmap.close();
    S.thumbs = { bitmap, frames, count };
    timeline.requestDraw();
  } catch (e) { /* the strip is a nicety */ }
}

// --- objects panel --------------------------------------------------------------------------

let renaming = null;
let objectsDrawn = '';
function renderObjects(force = false) {
  if (renaming !== null) return;
  const key = JSON.stringify([S.info.objects, [...S.hidden], S.selected]);
  if (!force && key === objectsDrawn) return;
  objectsDrawn = key;
  const list = $('object-list');
  list.replaceChildren();
  for (const o of S.info.objects) {
    const hidden = S.hidden.has(o.id);
    const colour = el('input', { type: 'color', value: hexOf(o), title: 'Overlay colour' });
    colour.addEventListener('change', () => {
      const c = colour.value.match(/[0-9a-f]{2}/gi).map((h) => parseInt(h, 16) / 255);
      edit(`colour ${o.name}`, () => api('PATCH', `${base()}/objects/${o.id}`, { colour: c }));
    });
    colour.addEventListener('click', (e) => e.stopPropagation());
    const name = el('span', { className: 'name', textContent: o.name, title: 'Double-click to rename' });
    name.addEventListener('dblclick', (e) => { e.stopPropagation(); rename(o, name); });
    const meta = el('span', { className: 'meta', textContent: `${o.keyframes.length} kf` });
    const eye = el('button', { className: 'small eye', textContent: hidden ? '\u25CB' : '\u25C9', title: hidden ? 'Show' : 'Hide' });
    eye.addEventListener('click', (e) => { e.stopPropagation(); toggleHidden(o.id); });
    const del = el('button', { className: 'small del', textContent: '\u00D7', title: `Delete ${o.name} (undoable)` });
    del.addEventListener('click', (e) => {
      e.stopPropagation();
      edit(`delete ${o.name}`, () => api('DELETE', `${base()}/objects/${o.id}`));
    });
    const li = el('li', { className: (o.id === S.selected ? 'selected ' : '') + (hidden ? 'hidden-obj' : '') },
      colour, name, meta, eye, del);
    li.dataset.object = String(o.id);
    li.addEventListener('click', () => { S.selected = o.id; savePrefs(); renderObjects(); render(); });
    list.append(li);
  }
  if (!S.info.objects.length) list.append(el('li', { className: 'hint', textContent: 'Click the plate to start an object.' }));
}

function rename(o, span) {
  renaming = o.id;
  const input = el('input', { type: 'text', value: o.name });
  span.replaceWith(input);
  input.focus();
  input.select();
  const done = (commit) => {
    if (renaming === null) return;
    renaming = null;
    const name = input.value.trim();
    if (commit && name && name !== o.name) {
      edit(`rename ${o.name}`, () => api('PATCH', `${base()}/objects/${o.id}`, { name }));
    } else renderObjects(true);
  };
  input.addEventListener('keydown', (e) => {
    e.stopPropagation();
    if (e.key === 'Enter') done(true);
    if (e.key === 'Escape') done(false);
  });
  input.addEventListener('blur', () => done(true));
}

function toggleHidden(id) {
  if (S.hidden.has(id)) S.hidden.delete(id); else S.hidden.add(id);
  savePrefs();
  S.colours = new Map(S.info.objects.filter((o) => !S.hidden.has(o.id)).map((o) => [o.id, rgbOf(o)]));
  mattes.clear();
  renderObjects();
  ensure(S.frame);
  render();
}

// --- edits ----------------------------------------------------------------------------------

// Edits run one after another; each ends with fresh session info and fresh overlays.
function edit(what, fn) {
  if (S.job) {
    status(`cannot ${what} while a job runs on this session: wait for it or cancel it`, 'error');
    return Promise.resolve(null);
  }
  S.edits += 1;
  document.body.dataset.edits = String(S.edits);
  S.editChain = S.editChain.then(async () => {
    try {
      const out = await fn();
      await refreshInfo(true);
      return out;
    } catch (e) {
      fail(e);
      return null;
    } finally {
      S.edits -= 1;
      document.body.dataset.edits = String(S.edits);
    }
  });
  return S.editChain;
}

async function ensureObject() {
  if (S.selected !== null && S.info.objects.some((o) => o.id === S.selected)) return S.selected;
  const r = await api('POST', `/v1/sessions/${S.sid}/objects`, {});
  S.selected = r.object.id;
  savePrefs();
  return S.selected;
}

function addPrompt(p) {
  edit(`${p.kind} prompt`, async () => {
    const oid = await ensureObject();
    if (S.hidden.has(oid)) toggleHidden(oid);
    const r = await api('POST', `/v1/sessions/${S.sid}/prompts`, { ...p, object: oid, frame: S.frame });
    const name = r.summary.object_names[String(oid)] || oid;
    status(`${name}: ${p.kind}${p.kind === 'point' && p.label === 0 ? ' (background)' : ''} on frame ${S.frame}`
      + (r.mask_pixels !== null ? `, mask ${r.mask_pixels} px` : ''), 'ok');
    return r;
  });
}

function paint(points, mode) {
  edit(mode === 'add' ? 'paint' : 'erase', async () => {
    const oid = await ensureObject();
    const r = await api('POST', `${base()}/paint`, { object: oid, frame: S.frame, mode, radius: viewport.brush, points });
    status(`${mode === 'add' ? 'painted' : 'erased'} on frame ${S.frame}: mask ${r.result.mask_pixels} px`, 'ok');
  });
}

function undo() {
  edit('undo', async () => {
    const r = await api('POST', `/v1/sessions/${S.sid}/undo`, {});
    status(r.undone ? `undone: ${r.undone}` : 'nothing to undo', 'ok');
  });
}

function redo() {
  edit('redo', async () => {
    const r = await api('POST', `/v1/sessions/${S.sid}/redo`, {});
    status(r.redone ? `redone: ${r.redone}` : 'nothing to redo', 'ok');
  });
}

function toggleKeyframe() {
  const o = S.info && S.info.objects.find((x) => x.id === S.selected);
  if (!o) { status('select an object first', 'error'); return; }
  const f = S.frame;
  if (o.keyframes.includes(f)) {
    edit('clear keyframe', () => api('DELETE', `/v1/sessions/${S.sid}/keyframes/${o.id}/${f}`));
  } else {
    edit('keyframe', () => api('POST', `/v1/sessions/${S.sid}/keyframes`, { object: o.id, frame: f }));
  }
}

function removeSelectedPrompt() {
  const uid = S.selectedPrompt;
  if (!uid) return;
  S.selectedPrompt = null;
  edit('remove prompt', () => api('DELETE', `/v1/sessions/${S.sid}/prompts/${uid}`));
}

// --- jobs -----------------------------------------------------------------------------------

async function runJob(kind, params, label, onDone) {
  if (S.job) { status('a job is running; wait for it or cancel it', 'error'); return; }
  document.body.dataset.job = 'submitting';
  try {
    const job = await api('POST', `/v1/sessions/${S.sid}/jobs`, { kind, params });
    follow(job, label, onDone);
  } catch (e) {
    document.body.dataset.job = 'refused';
    fail(e);
  }
}

function follow(job, label, onDone) {
  S.job = job;
  document.body.dataset.job = 'running';
  $('job').hidden = false;
  $('job-label').textContent = label;
  $('job-progress').value = 0;
  let lastRefresh = 0;
  watchJob(job.id, (j) => {
    S.job = j;
    const p = j.progress || {};
    $('job-progress').value = p.fraction || 0;
    if (j.state === 'queued' || j.state === 'waiting') {  // not started: say what it waits for
      document.body.dataset.job = j.state;
      $('job-label').textContent = `${label} — ${p.stage === 'waiting' && p.message ? p.message : j.state}`;
      return;
    }
    document.body.dataset.job = 'running';
    $('job-label').textContent = `${label}${p.frame !== undefined && p.frame !== null ? ` — frame ${p.frame}` : ''}`
      + (p.total ? `  ${p.done}/${p.total}` : '') + (p.eta ? `  ${Math.round(p.eta)} s left` : '');
    const now = performance.now();
    if (j.kind === 'track' && now - lastRefresh > 500) {
      lastRefresh = now;
      invalidateResults();
    }
  }).then(async (j) => {
    S.job = null;
    $('job').hidden = true;
    document.body.dataset.job = j.state;
    try { await refreshInfo(true); } catch (e) { /* shown by the next poll */ }
    if (j.state === 'succeeded') status(`${label}: done`, 'ok');
    else if (j.state === 'cancelled') status(`${label}: cancelled; finished frames are kept`, 'ok');
    else status(`${label}: ${(j.error && j.error.text) || j.state}`, 'error');
    if (onDone) onDone(j);
  });
}

function propagate(direction) {
  const params = { direction };
  if ($('prop-selected').checked && S.selected !== null) params.objects = [S.selected];
  if ($('prop-inout').checked && (S.inPt !== null || S.outPt !== null)) params.frames = playRange();
  runJob('track', params, `Propagate ${direction}`);
}

// --- QC -------------------------------------------------------------------------------------

function qcReasons() {
  const list = S.qc.get(S.frame) || [];
  const names = new Map((S.info ? S.info.objects : []).map((o) => [o.id, o.name]));
  $('qc-reasons').textContent = list.map((q) => `${names.get(q.object) || q.object} ${q.frame}: ${q.reasons.join('; ')}`).join('\n');
  const qcKind = S.kinds.find((k) => k.name === 'qc');
  $('qc-run').disabled = !!qcKind && !qcKind.available;
  $('qc-prev').disabled = !S.qc.size;
  $('qc-next').disabled = !S.qc.size;
}

function jumpTo(frames, dir) {
  const sorted = [...new Set(frames)].sort((a, b) => a - b);
  const f = dir > 0 ? sorted.find((x) => x > S.frame) : sorted.reverse().find((x) => x < S.frame);
  if (f === undefined) { status(dir > 0 ? 'no later one' : 'no earlier one'); return; }
  if (S.playing) stop();
  setFrame(f);
  qcReasons();
}

const keyframesVisible = () => S.info.objects.filter((o) => !S.hidden.has(o.id)).flatMap((o) => o.keyframes);

// --- export panel ---------------------------------------------------------------------------

async function loadKinds() {
  try {
    S.kinds = (await api('GET', '/v1/viewer/kinds')).kinds;
  } catch (e) { S.kinds = []; }
  const sel = $('export-kind');
  sel.replaceChildren();
  for (const k of S.kinds.filter((x) => x.name !== 'track')) {
    const opt = el('option', { value: k.name, textContent: k.available ? k.title : `${k.title} (not available)`, title: k.reason || k.description || '' });
    sel.append(opt);
  }
  if (S.kinds.some((k) => k.name === 'export')) sel.value = 'export';
  showKind();
  qcReasons();
}

function showKind() {
  const k = S.kinds.find((x) => x.name === $('export-kind').value);
  const form = $('export-form');
  $('export-result').textContent = '';
  if (!k) { form.replaceChildren(); return; }
  $('export-reason').textContent = k.available ? (k.description || '') : k.reason || 'not available';
  $('export-run').disabled = !k.available;
  $('export-run').textContent = k.name === 'export' ? 'Export' : `Run ${k.title}`;
  const defaults = {};
  const props = (k.schema && k.schema.properties) || {};
  const out = S.info && S.info.suggested_out_dir;
  for (const name of Object.keys(props)) {
    if (/_dir$/.test(name) && out) defaults[name] = `${out}/${k.name}`;
  }
  if (props.frames && (S.inPt !== null || S.outPt !== null)) defaults.frames = playRange();
  buildForm(form, k.schema, defaults);
}

function runExport() {
  const k = S.kinds.find((x) => x.name === $('export-kind').value);
  if (!k) return;
  let params;
  try { params = readForm($('export-form')); } catch (e) { fail(e); return; }
  $('export-result').textContent = '';
  runJob(k.name, params, k.title, (j) => {
    if (j.state !== 'succeeded') { $('export-result').textContent = (j.error && j.error.text) || j.state; return; }
    $('export-result').textContent = summarise(j.result);
    document.body.dataset.exported = j.state;
  });
}

function summarise(result) {
  const lines = [];
  for (const [k, v] of Object.entries(result || {})) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) lines.push(`${k}: ${v.length > 6 ? `${v.slice(0, 3).join(', ')} … (${v.length})` : v.join(', ')}`);
    else if (typeof v === 'object') lines.push(`${k}: ${JSON.stringify(v).slice(0, 200)}`);
    else lines.push(`${k}: ${v}`);
  }
  return lines.join('\n');
}

// --- playback -------------------------------------------------------------------------------

function play(dir) {
  if (!S.info) return;
  if (S.playing === dir) S.speed = Math.min(8, S.speed * 2);
  else { S.playing = dir; S.speed = 1; }
  const [a, b] = playRange();
  if (S.frame < a || S.frame > b) setFrame(dir > 0 ? a : b);
  S.nextDue = performance.now();
  S.shownTimes = [];
  document.body.dataset.playing = String(dir);
  prefetchAround();
  requestAnimationFrame(tick);
}

function stop() {
  S.playing = 0;
  S.speed = 1;
  document.body.dataset.playing = '0';
  $('fps-label').textContent = '';
  ensure(S.frame);
  render();
}

function step(f, dir) {
  const [a, b] = playRange();
  let g = f + dir;
  if (g > b) g = a;
  if (g < a) g = b;
  return g;
}

function tick(now) {
  if (!S.playing) return;
  if (now >= S.nextDue) {
    const next = step(S.frame, S.playing);
    if (frameReady(next)) {
      setFrame(next);
      S.nextDue += 1000 / (S.fps * S.speed);
      if (now - S.nextDue > 100) S.nextDue = now; // fell behind (loading): play every frame, do not rush
      S.shownTimes.push(now);
      if (S.shownTimes.length > 25) S.shownTimes.shift();
      const t = S.shownTimes;
      if (t.length > 2) {
        const fps = (t.length - 1) * 1000 / (t[t.length - 1] - t[0]);
        $('fps-label').textContent = `${fps.toFixed(1)}/${fmtFps(S.fps * S.speed)} fps`;
      }
      prefetchAround();
    } else {
      ensure(next);
    }
  }
  requestAnimationFrame(tick);
}

function setIn(clear) {
  S.inPt = clear ? null : S.frame;
  if (S.inPt !== null && S.outPt !== null && S.outPt < S.inPt) S.outPt = null;
  inoutChanged();
}
function setOut(clear) {
  S.outPt = clear ? null : S.frame;
  if (S.inPt !== null && S.outPt !== null && S.inPt > S.outPt) S.inPt = null;
  inoutChanged();
}
function inoutChanged() {
  savePrefs();
  $('range-label').textContent = rangeText();
  document.body.dataset.inout = `${S.inPt ?? ''}-${S.outPt ?? ''}`;
  timeline.requestDraw();
  showKind();
}

// --- modes and tools ------------------------------------------------------------------------

function setMode(mode) {
  S.mode = mode;
  S.lastImage = null;
  for (const b of document.querySelectorAll('[data-mode]')) b.classList.toggle('active', b.dataset.mode === mode);
  ensure(S.frame);
  render();
}

function setTool(tool) {
  viewport.tool = tool;
  for (const b of document.querySelectorAll('[data-tool]')) b.classList.toggle('active', b.dataset.tool === tool);
  $('view').className = tool === 'prompt' ? '' : tool;
  viewport.requestDraw();
}

function toggleOverlay() {
  S.overlay = !S.overlay;
  $('overlay-toggle').classList.toggle('active', S.overlay);
  savePrefs();
  ensure(S.frame);
  render();
}

function frameSelected() {
  const entry = overlays.get(S.frame);
  if (!entry || S.selected === null) { viewport.fit(); return; }
  let x0 = Infinity; let y0 = Infinity; let x1 = -1; let y1 = -1;
  for (let y = 0, i = 0; y < entry.h; y += 1) {
    for (let x = 0; x < entry.w; x += 1, i += 1) {
      if (entry.ids[i] === S.selected) {
        if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) { viewport.fit(); status('the selected object has no mask on this frame'); return; }
  const k = S.info.clip.width / entry.w;
  viewport.frameRect(x0 * k, y0 * k, (x1 + 1) * k, (y1 + 1) * k, 0.7);
}

function setSize(size) {
  S.size = size;
  savePrefs();
  plates.clear(); overlays.clear(); mattes.clear(); depths.clear();
  S.lastImage = null;
  ensure(S.frame);
  render();
}

// --- keyboard -------------------------------------------------------------------------------

function onKey(e) {
  const t = e.target;
  const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT') && t.type !== 'range' && t.type !== 'checkbox';
  if (typing) return;
  if (!S.info) return;
  const ctrl = e.ctrlKey || e.metaKey;
  let handled = true;
  if (ctrl && e.code === 'KeyZ') { if (e.shiftKey) redo(); else undo(); }
  else if (ctrl && e.code === 'KeyY') redo();
  else if (ctrl) handled = false;
  else if (e.code === 'Space') { if (S.playing) stop(); else play(1); }
  else if (e.code === 'KeyL') play(1);
  else if (e.code === 'KeyJ') play(-1);
  else if (e.code === 'KeyK' && e.shiftKey) toggleKeyframe();
  else if (e.code === 'KeyK') stop();
  else if (e.code === 'ArrowRight') { if (S.playing) stop(); setFrame(S.frame + (e.shiftKey ? 10 : 1)); prefetchAround(); }
  else if (e.code === 'ArrowLeft') { if (S.playing) stop(); setFrame(S.frame - (e.shiftKey ? 10 : 1)); prefetchAround(); }
  else if (e.code === 'Home') { if (S.playing) stop(); setFrame(playRange()[0]); }
  else if (e.code === 'End') { if (S.playing) stop(); setFrame(playRange()[1]); }
  else if (e.code === 'KeyI') setIn(e.altKey);
  else if (e.code === 'KeyO') setOut(e.altKey);
  else if (e.code === 'BracketLeft' && e.shiftKey) jumpTo([...S.qc.keys()], -1);
  else if (e.code === 'BracketRight' && e.shiftKey) jumpTo([...S.qc.keys()], 1);
  else if (e.code === 'BracketLeft') jumpTo(keyframesVisible(), -1);
  else if (e.code === 'BracketRight') jumpTo(keyframesVisible(), 1);
  else if (e.code === 'KeyQ') setTool('prompt');
  else if (e.code === 'KeyW') setTool('pan');
  else if (e.code === 'KeyB') setTool('brush');
  else if (e.code === 'KeyE') setTool('eraser');
  else if (e.code === 'KeyR' || e.code === 'KeyS') status('rotate and scale act on shapes in the host; here masks are edited with prompts, brush and eraser');
  else if (e.code === 'Backquote' || e.key === '~' || e.key === '`') toggleOverlay();
  else if (e.code === 'KeyF') frameSelected();
  else if (e.code === 'KeyA') viewport.fit();
  else if (e.code === 'KeyH') viewport.oneToOne();
  else if (e.code === 'Digit1') setMode('plate');
  else if (e.code === 'Digit2') setMode('matte');
  else if (e.code === 'Digit3' && S.info.depth) setMode('depth');
  else if (e.code === 'Delete' || e.code === 'Backspace') removeSelectedPrompt();
  else if (e.key === '?') $('help').hidden = !$('help').hidden;
  else if (e.code === 'Escape') { $('help').hidden = true; S.selectedPrompt = null; render(); }
  else handled = false;
  if (handled) e.preventDefault();
  if (handled) qcReasons();
}

// --- wiring ---------------------------------------------------------------------------------

function wire() {
  document.addEventListener('keydown', onKey);
  $('undo').addEventListener('click', undo);
  $('redo').addEventListener('click', redo);
  $('help-btn').addEventListener('click', () => { $('help').hidden = false; });
  $('help-close').addEventListener('click', () => { $('help').hidden = true; });
  for (const b of document.querySelectorAll('[data-tool]')) b.addEventListener('click', () => setTool(b.dataset.tool));
  for (const b of document.querySelectorAll('[data-mode]')) b.addEventListener('click', () => setMode(b.dataset.mode));
  $('overlay-toggle').addEventListener('click', toggleOverlay);
  $('fit-all').addEventListener('click', () => viewport.fit());
  $('fit-selected').addEventListener('click', frameSelected);
  $('zoom-100').addEventListener('click', () => viewport.oneToOne());
  $('res').addEventListener('change', () => setSize(Number($('res').value)));
  $('add-object').addEventListener('click', () => edit('add object', async () => {
    const r = await api('POST', `/v1/sessions/${S.sid}/objects`, {});
    S.selected = r.object.id;
    savePrefs();
  }));
  $('text-go').addEventListener('click', () => {
    const text = $('text-prompt').value.trim();
    if (text) addPrompt({ kind: 'text', text });
  });
  $('text-prompt').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('text-go').click(); });
  $('keyframe-btn').addEventListener('click', toggleKeyframe);
  $('brush-size').addEventListener('input', () => { viewport.brush = Number($('brush-size').value); viewport.requestDraw(); });
  $('opacity').addEventListener('input', () => { S.opacity = Number($('opacity').value) / 100; savePrefs(); render(); });
  $('overlay-style').addEventListener('change', () => { S.style = $('overlay-style').value; savePrefs(); render(); });
  $('overlay-blend').addEventListener('change', () => { S.blend = $('overlay-blend').value; savePrefs(); render(); });
  for (const b of document.querySelectorAll('.prop')) b.addEventListener('click', () => propagate(b.dataset.dir));
  $('job-cancel').addEventListener('click', () => {
    if (S.job) api('POST', `/v1/jobs/${S.job.id}/cancel`, {}).catch(fail);
  });
  $('qc-run').addEventListener('click', () => {
    const params = {};
    if (S.inPt !== null || S.outPt !== null) params.frames = playRange();
    runJob('qc', params, 'QC');
  });
  $('qc-prev').addEventListener('click', () => jumpTo([...S.qc.keys()], -1));
  $('qc-next').addEventListener('click', () => jumpTo([...S.qc.keys()], 1));
  $('export-kind').addEventListener('change', showKind);
  $('export-run').addEventListener('click', runExport);
  $('export-form').addEventListener('submit', (e) => { e.preventDefault(); runExport(); });
  $('go-start').addEventListener('click', () => { if (S.playing) stop(); setFrame(playRange()[0]); });
  $('go-end').addEventListener('click', () => { if (S.playing) stop(); setFrame(playRange()[1]); });
  $('play-fwd').addEventListener('click', () => play(1));
  $('play-back').addEventListener('click', () => play(-1));
  $('stop').addEventListener('click', stop);
  $('set-in').addEventListener('click', () => setIn(false));
  $('set-out').addEventListener('click', () => setOut(false));
  $('clear-inout').addEventListener('click', () => { S.inPt = null; S.outPt = null; inoutChanged(); });
  $('cache-all').addEventListener('click', () => {
    const [a, b] = playRange();
    const frames = [];
    for (let f = a; f <= b; f += 1) frames.push(f);
    imageCache().prefetch(frames);
    if (S.mode === 'plate' && S.overlay) overlays.prefetch(frames);
    status(`caching ${frames.length} frames`);
  });
  $('frame-input').addEventListener('change', () => {
    const v = Number($('frame-input').value);
    if (Number.isFinite(v)) setFrame(v);
    $('view').focus();
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(loadThumbs, 400); });
}

// --- the session picker (no ?session=) -------------------------------------------------------

async function picker(message) {
  $('picker').hidden = false;
  $('picker-error').textContent = message || '';
  try {
    const { sessions } = await api('GET', '/v1/sessions');
    const list = $('picker-list');
    list.replaceChildren();
    for (const s of sessions) {
      const li = el('li', { textContent: `${s.clip}${s.key ? `  (${s.key})` : ''}`, title: s.project });
      li.addEventListener('click', () => { location.search = `?session=${encodeURIComponent(s.session)}`; });
      list.append(li);
    }
    if (!sessions.length) list.append(el('li', { className: 'hint', textContent: 'No open sessions.' }));
  } catch (e) {
    $('picker-error').textContent = e.message;
  }
  $('picker-open').addEventListener('click', async () => {
    const clip = $('picker-path').value.trim();
    if (!clip) return;
    try {
      const s = await api('POST', '/v1/sessions', { clip });
      location.search = `?session=${encodeURIComponent(s.session)}`;
    } catch (e) { $('picker-error').textContent = e.message; }
  });
}

// --- start ----------------------------------------------------------------------------------

async function start() {
  wire();
  if (!S.sid) { picker(); return; }
  [S.inPt, S.outPt] = store.get('inout', [null, null]);
  S.hidden = new Set(store.get('hidden', []));
  const v = store.get('view', {});
  if (typeof v.opacity === 'number') S.opacity = v.opacity;
  if (v.style) S.style = v.style;
  if (v.blend) S.blend = v.blend;
  if (typeof v.size === 'number') S.size = v.size;
  if (v.overlay === false) S.overlay = false;
  if (typeof v.selected === 'number') S.selected = v.selected;
  $('opacity').value = String(Math.round(S.opacity * 100));
  $('overlay-style').value = S.style;
  $('overlay-blend').value = S.blend;
  $('res').value = String(S.size);
  $('overlay-toggle').classList.toggle('active', S.overlay);
  try {
    const info = await api('GET', `${base()}/info`);
    applyInfo(info);
  } catch (e) {
    picker(e.message);
    return;
  }
  document.body.dataset.inout = `${S.inPt ?? ''}-${S.outPt ?? ''}`;
  setFrame(S.frame);
  prefetchAround();
  loadKinds();
  if (S.info.busy_job) follow({ id: S.info.busy_job }, 'Job in progress');
  document.body.dataset.loaded = '1';
  $('view').focus();
  setInterval(() => {
    if (document.hidden || S.edits) return;
    refreshInfo().catch((e) => { if (e.status === 401 || e.status === 403) fail(e); });
  }, 2000);
}

// Hooks for automated tests and for pipeline tools driving the page.
window.roto = {
  state: S,
  plateToClient(x, y) {
    const r = $('view').getBoundingClientRect();
    const [sx, sy] = viewport.toScreen(x, y);
    return [r.left + sx, r.top + sy];
  },
  sample(x, y) {
    const dpr = window.devicePixelRatio || 1;
    const [sx, sy] = viewport.toScreen(x, y);
    viewport.draw();
    return [...viewport.ctx.getImageData(Math.floor(sx * dpr), Math.floor(sy * dpr), 1, 1).data];
  },
  settled() {
    return !!S.info && !S.edits && !S.job && document.body.dataset.shown === String(S.frame);
  },
  setFrame,
};

start();
