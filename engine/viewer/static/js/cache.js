// Decoded images per frame, loaded a few at a time, the most needed first, within a pixel budget.
//
// Entries carry a generation: bumping `gen` (after an edit, an undo, a propagation step) marks
// them stale; a stale entry is still shown while its fresh version loads, so nothing flickers.

import { fetchBitmap } from './api.js';

export class FrameCache {
  // urlFor(frame) -> URL; decode(bitmap) -> {value, cost}; priority(frame) -> number (lower first)
  constructor({ urlFor, decode, dispose, priority, budget, concurrency = 4, cacheMode = 'default', onLoad, onError }) {
    this.urlFor = urlFor;
    this.decode = decode || ((b) => ({ value: b, cost: b ? b.width * b.height : 1 }));
    this.dispose = dispose || ((v) => { if (v && v.close) v.close(); });
    this.priority = priority || (() => 0);
    this.budget = budget;
    this.concurrency = concurrency;
    this.cacheMode = cacheMode;
    this.onLoad = onLoad || (() => {});
    this.onError = onError || (() => {});
    this.entries = new Map(); // frame -> {value, cost, gen}
    this.wanted = new Map(); // frame -> [resolve...]
    this.inflight = new Map(); // frame -> gen
    this.used = 0;
    this.gen = 0;
    this.epoch = 0; // bumped by clear(): answers of older requests are dropped
  }

  has(frame) { return this.entries.has(frame); }
  fresh(frame) { const e = this.entries.get(frame); return !!e && e.gen === this.gen; }
  get(frame) { const e = this.entries.get(frame); return e ? e.value : undefined; }
  frames() { return this.entries.keys(); }

  invalidate() { this.gen += 1; }

  clear() {
    for (const e of this.entries.values()) this.dispose(e.value);
    this.entries.clear();
    this.used = 0;
    this.epoch += 1;
    this.inflight.clear();
    for (const waiters of this.wanted.values()) for (const w of waiters) w(undefined);
    this.wanted.clear();
  }

  // A promise of the fresh value of `frame` (loads it when needed).
  want(frame) {
    if (this.fresh(frame)) return Promise.resolve(this.get(frame));
    return new Promise((resolve) => {
      const list = this.wanted.get(frame) || [];
      list.push(resolve);
      this.wanted.set(frame, list);
      this.pump();
    });
  }

  prefetch(frames) {
    for (const f of frames) {
      if (!this.fresh(f) && !this.wanted.has(f)) this.wanted.set(f, []);
    }
    this.pump();
  }

  // Forget queued frames nobody waits for (e.g. after the playhead jumped far away).
  dropQueued(keep) {
    for (const [f, waiters] of this.wanted) {
      if (!waiters.length && !(keep && keep(f))) this.wanted.delete(f);
    }
  }

  pump() {
    while (this.inflight.size < this.concurrency && this.wanted.size) {
      let best = null;
      let bestP = Infinity;
      for (const f of this.wanted.keys()) {
        if (this.inflight.has(f)) continue;
        const p = this.priority(f);
        if (p < bestP) { bestP = p; best = f; }
      }
      if (best === null) break;
      this.load(best);
    }
  }

  async load(frame) {
    const gen = this.gen;
    const epoch = this.epoch;
    this.inflight.set(frame, gen);
    let value;
    let failed = null;
    try {
      const { bitmap } = await fetchBitmap(this.urlFor(frame), { cache: this.cacheMode });
      if (epoch === this.epoch) {
        const out = this.decode(bitmap);
        this.store(frame, out.value, out.cost, gen);
        value = out.value;
      } else if (bitmap) {
        bitmap.close();
      }
    } catch (e) {
      failed = e;
    }
    if (epoch !== this.epoch) return;
    this.inflight.delete(frame);
    const waiters = this.wanted.get(frame) || [];
    if (gen === this.gen || failed) {
      this.wanted.delete(frame);
      for (const w of waiters) w(value);
    } // else: it went stale while loading; it stays wanted and loads again
    if (failed) this.onError(frame, failed);
    else this.onLoad(frame);
    this.pump();
  }

  store(frame, value, cost, gen) {
    const old = this.entries.get(frame);
    if (old) { this.used -= old.cost; if (old.value !== value) this.dispose(old.value); }
    this.entries.set(frame, { value, cost, gen });
    this.used += cost;
    if (this.used > this.budget) this.evict(frame);
  }

  // Drop the frames farthest from what is needed (lowest priority) until within budget.
  evict(keep) {
    const order = [...this.entries.keys()].filter((f) => f !== keep)
      .sort((a, b) => this.priority(b) - this.priority(a));
    for (const f of order) {
      if (this.used <= this.budget) break;
      const e = this.entries.get(f);
      this.entries.delete(f);
      this.used -= e.cost;
      this.dispose(e.value);
    }
  }
}

// An overlay id map (R = id & 255, G = id >> 8) decoded to a Uint16Array.
let scratch = null;
export function decodeIds(bitmap) {
  if (!bitmap) return { value: null, cost: 1 };
  const w = bitmap.width;
  const h = bitmap.height;
  if (!scratch || scratch.width < w || scratch.height < h) {
    scratch = new OffscreenCanvas(Math.max(w, scratch ? scratch.width : 0), Math.max(h, scratch ? scratch.height : 0));
  }
  const ctx = scratch.getContext('2d', { willReadFrequently: true });
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const px = ctx.getImageData(0, 0, w, h).data;
  const ids = new Uint16Array(w * h);
  let any = false;
  for (let i = 0, p = 0; i < ids.length; i += 1, p += 4) {
    const v = px[p] | (px[p + 1] << 8);
    ids[i] = v;
    if (v) any = true;
  }
  return { value: { ids, w, h, any, painted: null, paintedKey: null }, cost: w * h / 2 };
}

// Colour an id map: fill at `opacity`, outline opaque; hidden objects (not in `colours`) skipped.
export function paintIds(entry, colours, opacity, style) {
  const key = `${opacity}|${style}|${[...colours.entries()].map(([k, c]) => k + ':' + c.join(',')).join(';')}`;
  if (entry.painted && entry.paintedKey === key) return entry.painted;
  const { ids, w, h } = entry;
  const canvas = entry.painted || new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  const out = img.data;
  const fillA = Math.round(Math.max(0, Math.min(1, opacity)) * 255);
  const wantFill = style !== 'outline';
  const wantEdge = style !== 'fill';
  for (let y = 0, i = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1, i += 1) {
      const id = ids[i];
      if (!id) continue;
      const c = colours.get(id);
      if (!c) continue;
      let edge = false;
      if (wantEdge) {
        edge = (x === 0 || ids[i - 1] !== id) || (x === w - 1 || ids[i + 1] !== id)
          || (y === 0 || ids[i - w] !== id) || (y === h - 1 || ids[i + w] !== id);
      }
      if (!edge && !wantFill) continue;
      const p = i * 4;
      out[p] = c[0]; out[p + 1] = c[1]; out[p + 2] = c[2];
      out[p + 3] = edge ? 255 : fillA;
    }
  }
  ctx.putImageData(img, 0, 0);
  entry.painted = canvas;
  entry.paintedKey = key;
  return canvas;
}
