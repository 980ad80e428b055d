// The timeline: thumbnail strip, frame ruler (the plate's own numbers), one track per object
// (frames with masks, keyframes, occlusion), QC flags, cached frames, in/out and the playhead.
// Drag anywhere to scrub; every position maps to exactly one frame.

const PAD = 8;
const THUMB_H = 40;
const RULER_H = 18;
const ROW_H = 9;
const QC_H = 9;
const CACHE_H = 3;

export class Timeline {
  // hooks: model() -> {lo, hi, frame, inPt, outPt, objects, qc (Map frame -> reasons), cached (Set), thumbs}
  //        onScrub(frame), onScrubEnd()
  constructor(canvas, hooks) {
    this.canvas = canvas;
    this.hooks = hooks;
    this.ctx = canvas.getContext('2d');
    this.scrubbing = false;
    this.pending = false;
    new ResizeObserver(() => this.requestDraw()).observe(canvas);
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.scrubbing = true;
      this.hooks.onScrub(this.frameAt(e));
    });
    canvas.addEventListener('pointermove', (e) => { if (this.scrubbing) this.hooks.onScrub(this.frameAt(e)); });
    const end = () => { if (this.scrubbing) { this.scrubbing = false; this.hooks.onScrubEnd(); } };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  layout(m) {
    const rows = Math.max(1, m.objects.length);
    const rowH = rows > 6 ? Math.max(3, Math.floor(54 / rows)) : ROW_H;
    const height = THUMB_H + RULER_H + rows * rowH + QC_H + CACHE_H + 6;
    return { rowH, height };
  }

  frameAt(e) {
    const m = this.hooks.model();
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const n = m.hi - m.lo + 1;
    const fw = (r.width - 2 * PAD) / n;
    return Math.max(m.lo, Math.min(m.hi, m.lo + Math.floor((x - PAD) / fw)));
  }

  requestDraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const m = this.hooks.model();
    if (!m) return;
    const { rowH, height } = this.layout(m);
    if (this.canvas.style.height !== `${height}px`) this.canvas.style.height = `${height}px`;
    const dpr = window.devicePixelRatio || 1;
    const W = this.canvas.clientWidth;
    const H = height;
    if (this.canvas.width !== Math.round(W * dpr) || this.canvas.height !== Math.round(H * dpr)) {
      this.canvas.width = Math.round(W * dpr);
      this.canvas.height = Math.round(H * dpr);
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#1f2226';
    ctx.fillRect(0, 0, W, H);
    const n = m.hi - m.lo + 1;
    const fw = (W - 2 * PAD) / n;
    const xOf = (f) => PAD + (f - m.lo) * fw;

    // thumbnails
    if (m.thumbs && m.thumbs.bitmap) {
      const k = m.thumbs.frames.length;
      const tw = (W - 2 * PAD) / k;
      const bw = m.thumbs.bitmap.width / k;
      for (let i = 0; i < k; i += 1) {
        // keep the tile's aspect: crop its middle to the slot
        const srcW = Math.min(bw, (tw * m.thumbs.bitmap.height) / THUMB_H);
        ctx.drawImage(m.thumbs.bitmap, i * bw + (bw - srcW) / 2, 0, srcW, m.thumbs.bitmap.height,
          PAD + i * tw, 0, Math.max(1, tw - 1), THUMB_H);
      }
    } else {
      ctx.fillStyle = '#26292e';
      ctx.fillRect(PAD, 0, W - 2 * PAD, THUMB_H);
    }

    // in/out shading
    const yTop = THUMB_H;
    if (m.inPt !== null || m.outPt !== null) {
      const a = m.inPt !== null ? m.inPt : m.lo;
      const b = m.outPt !== null ? m.outPt : m.hi;
      ctx.fillStyle = 'rgba(0,0,0,0.5)';
      ctx.fillRect(PAD, 0, xOf(a) - PAD, H);
      ctx.fillRect(xOf(b + 1), 0, W - PAD - xOf(b + 1), H);
      ctx.fillStyle = '#f0a35e';
      ctx.fillRect(xOf(a) - 1, yTop, 2, H - yTop);
      ctx.fillRect(xOf(b + 1) - 1, yTop, 2, H - yTop);
    }

    // ruler
    ctx.fillStyle = '#2a2e33';
    ctx.fillRect(PAD, yTop, W - 2 * PAD, RULER_H);
    const steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000];
    const step = steps.find((s) => s * fw >= 48) || 10000;
    ctx.font = '10px ui-monospace, monospace';
    ctx.textBaseline = 'middle';
    for (let f = Math.ceil(m.lo / step) * step; f <= m.hi; f += step) {
      const x = xOf(f) + fw / 2;
      ctx.fillStyle = '#5b626a';
      ctx.fillRect(x, yTop + RULER_H - 6, 1, 6);
      ctx.fillStyle = '#9aa1a8';
      ctx.fillText(String(f), x + 3, yTop + RULER_H / 2 - 1);
    }
    if (fw >= 4) {
      ctx.fillStyle = '#464c53';
      for (let f = m.lo; f <= m.hi; f += 1) ctx.fillRect(xOf(f) + fw / 2, yTop + RULER_H - 3, 1, 3);
    }

    // object tracks
    let y = yTop + RULER_H + 2;
    for (const o of m.objects) {
      const [r, g, b] = o.rgb;
      ctx.fillStyle = o.hidden ? 'rgba(120,120,120,0.25)' : `rgba(${r},${g},${b},0.45)`;
      for (const [a, z] of o.frames) ctx.fillRect(xOf(a), y + 1, (z - a + 1) * fw, rowH - 2);
      ctx.fillStyle = 'rgba(0,0,0,0.55)';
      for (const f of o.occluded) ctx.fillRect(xOf(f), y + 1, Math.max(1, fw), rowH - 2);
      ctx.fillStyle = o.hidden ? '#888' : `rgb(${r},${g},${b})`;
      for (const f of o.keyframes) {
        const cx = xOf(f) + fw / 2;
        const cy = y + rowH / 2;
        const s = Math.min(rowH / 2, 5);
        ctx.beginPath();
        ctx.moveTo(cx, cy - s); ctx.lineTo(cx + s, cy); ctx.lineTo(cx, cy + s); ctx.lineTo(cx - s, cy);
        ctx.closePath();
        ctx.fill();
        ctx.strokeStyle = '#fff';
        ctx.lineWidth = 0.75;
        ctx.stroke();
      }
      y += rowH;
    }
    if (!m.objects.length) y += rowH;

    // QC flags
    ctx.fillStyle = '#e05a4f';
    for (const f of m.qc.keys()) {
      const cx = xOf(f) + fw / 2;
      ctx.beginPath();
      ctx.moveTo(cx, y + 1); ctx.lineTo(cx + 4, y + QC_H - 1); ctx.lineTo(cx - 4, y + QC_H - 1);
      ctx.closePath();
      ctx.fill();
    }
    y += QC_H;

    // cached frames
    ctx.fillStyle = '#5fbf6a';
    for (const f of m.cached) {
      if (f >= m.lo && f <= m.hi) ctx.fillRect(xOf(f), y + 1, Math.max(1, fw), CACHE_H);
    }

    // playhead
    const px = xOf(m.frame);
    ctx.fillStyle = 'rgba(63,127,196,0.35)';
    ctx.fillRect(px, 0, Math.max(1, fw), H);
    ctx.fillStyle = '#4f9bea';
    ctx.fillRect(px + fw / 2 - 1, 0, 2, H);
    const label = String(m.frame);
    ctx.font = 'bold 11px ui-monospace, monospace';
    const tw = ctx.measureText(label).width + 8;
    const lx = Math.min(W - tw - 2, Math.max(2, px + fw / 2 - tw / 2));
    ctx.fillStyle = '#4f9bea';
    ctx.fillRect(lx, yTop + 1, tw, RULER_H - 2);
    ctx.fillStyle = '#fff';
    ctx.fillText(label, lx + 4, yTop + RULER_H / 2);
  }
}
