// The viewport: the plate at fit or any zoom, overlays, prompt markers, and the pointer tools.
// Coordinates: plate pixels (top-left origin, as every engine API) <-> CSS pixels of the canvas.

const MARKER = 6; // marker radius, CSS px
const DRAG = 4; // movement that turns a click into a drag, CSS px

export class Viewport {
  // hooks: layers() -> {image, overlay, prompts, selectedPrompt, colours}, and the tool callbacks
  // onPoint(x, y, label), onBox(x0, y0, x1, y1), onStroke(points, mode), onMovePrompt(uid, x, y),
  // onSelectPrompt(uid), onViewChange()
  constructor(canvas, hooks) {
    this.canvas = canvas;
    this.hooks = hooks;
    this.ctx = canvas.getContext('2d');
    this.pw = 0; this.ph = 0; // plate size
    this.scale = 1; this.tx = 0; this.ty = 0;
    this.tool = 'prompt';
    this.brush = 12; // plate pixels
    this.gesture = null;
    this.cursor = null;
    this.fitted = true;
    this.pending = false;
    const ro = new ResizeObserver(() => this.resize());
    ro.observe(canvas);
    canvas.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerup', (e) => this.up(e));
    canvas.addEventListener('pointercancel', () => { this.gesture = null; this.draw(); });
    canvas.addEventListener('pointerleave', () => { this.cursor = null; this.requestDraw(); });
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());
  }

  // --- geometry -----------------------------------------------------------------------------

  get cw() { return this.canvas.clientWidth; }
  get ch() { return this.canvas.clientHeight; }

  setPlate(w, h) {
    const changed = w !== this.pw || h !== this.ph;
    this.pw = w; this.ph = h;
    if (changed) this.fit();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.cw * dpr));
    const h = Math.max(1, Math.round(this.ch * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w; this.canvas.height = h;
    }
    if (this.fitted) this.fit(); else this.requestDraw();
  }

  fitScale() { return this.pw ? Math.min(this.cw / this.pw, this.ch / this.ph) * 0.96 : 1; }

  fit() {
    if (!this.pw) return;
    this.frameRect(0, 0, this.pw, this.ph, 0.96);
    this.fitted = true;
  }

  frameRect(x0, y0, x1, y1, fill = 0.8) {
    const w = Math.max(1, x1 - x0);
    const h = Math.max(1, y1 - y0);
    this.scale = Math.min(this.cw / w, this.ch / h) * fill;
    this.tx = this.cw / 2 - ((x0 + x1) / 2) * this.scale;
    this.ty = this.ch / 2 - ((y0 + y1) / 2) * this.scale;
    this.fitted = false;
    this.changed();
  }

  zoomAt(factor, sx, sy) {
    const s = Math.max(0.02, Math.min(64, this.scale * factor));
    const [px, py] = this.toPlate(sx, sy);
    this.scale = s;
    this.tx = sx - px * s;
    this.ty = sy - py * s;
    this.fitted = false;
    this.changed();
  }

  oneToOne() {
    const dpr = window.devicePixelRatio || 1;
    this.zoomAt((1 / dpr) / this.scale, this.cw / 2, this.ch / 2);
  }

  changed() {
    this.requestDraw();
    if (this.hooks.onViewChange) this.hooks.onViewChange();
  }

  toPlate(sx, sy) { return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale]; }
  toScreen(px, py) { return [px * this.scale + this.tx, py * this.scale + this.ty]; }

  inside(px, py) { return px >= 0 && py >= 0 && px < this.pw && py < this.ph; }

  eventXY(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  // --- pointer ------------------------------------------------------------------------------

  wheel(e) {
    e.preventDefault();
    const [sx, sy] = this.eventXY(e);
    this.zoomAt(Math.pow(1.0015, -e.deltaY), sx, sy);
  }

  hitPrompt(sx, sy) {
    const { prompts } = this.hooks.layers();
    for (const p of (prompts || []).slice().reverse()) {
      if (p.kind !== 'point') continue;
      const [x, y] = this.toScreen(p.data.x, p.data.y);
      if (Math.hypot(x - sx, y - sy) <= MARKER + 3) return p;
    }
    return null;
  }

  down(e) {
    this.canvas.focus();
    const [sx, sy] = this.eventXY(e);
    this.canvas.setPointerCapture(e.pointerId);
    const pan = e.button === 1 || this.tool === 'pan';
    const g = { sx, sy, x: sx, y: sy, button: e.button, alt: e.altKey, moved: false, tx: this.tx, ty: this.ty,
      kind: pan ? 'pan' : this.tool };
    if (g.kind === 'prompt' && e.button === 0 && !e.altKey) {
      const hit = this.hitPrompt(sx, sy);
      if (hit) { g.kind = 'marker'; g.prompt = hit; }
    }
    if (g.kind === 'brush' || g.kind === 'eraser') {
      if (e.altKey || e.button !== 0) g.kind = 'pan';
      else g.points = [this.toPlate(sx, sy)];
    }
    this.gesture = g;
  }

  move(e) {
    const [sx, sy] = this.eventXY(e);
    this.cursor = [sx, sy];
    const g = this.gesture;
    if (!g) { if (this.tool === 'brush' || this.tool === 'eraser') this.requestDraw(); return; }
    g.x = sx; g.y = sy;
    if (!g.moved && Math.hypot(sx - g.sx, sy - g.sy) > DRAG) {
      g.moved = true;
      if (g.alt && (g.kind === 'prompt' || g.kind === 'marker')) g.kind = 'pan'; // Alt+drag pans
    }
    if (g.kind === 'pan' && g.moved) {
      this.tx = g.tx + (sx - g.sx);
      this.ty = g.ty + (sy - g.sy);
      this.fitted = false;
      this.changed();
      return;
    }
    if ((g.kind === 'brush' || g.kind === 'eraser') && g.points) {
      const p = this.toPlate(sx, sy);
      const last = g.points[g.points.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) * this.scale >= 2) g.points.push(p);
    }
    this.requestDraw();
  }

  up(e) {
    const g = this.gesture;
    this.gesture = null;
    if (!g) return;
    const [sx, sy] = this.eventXY(e);
    const [px, py] = this.toPlate(sx, sy);
    if (g.kind === 'marker') {
      if (g.moved && this.inside(px, py)) this.hooks.onMovePrompt(g.prompt.uid, px, py);
      else this.hooks.onSelectPrompt(g.prompt.uid);
    } else if (g.kind === 'prompt') {
      if (g.moved && g.button === 0) {
        const [x0, y0] = this.toPlate(g.sx, g.sy);
        const clamp = (v, hi) => Math.max(0, Math.min(hi - 0.01, v));
        this.hooks.onBox(clamp(Math.min(x0, px), this.pw), clamp(Math.min(y0, py), this.ph),
          clamp(Math.max(x0, px), this.pw), clamp(Math.max(y0, py), this.ph));
      } else if (!g.moved && this.inside(px, py)) {
        this.hooks.onPoint(px, py, (g.alt || g.button === 2) ? 0 : 1);
      }
    } else if ((g.kind === 'brush' || g.kind === 'eraser') && g.points) {
      this.hooks.onStroke(g.points, g.kind === 'brush' ? 'add' : 'erase');
    }
    this.requestDraw();
  }

  // --- drawing ------------------------------------------------------------------------------

  requestDraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#111214';
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.pw) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const L = this.hooks.layers();
    const w = this.pw * this.scale;
    const h = this.ph * this.scale;
    if (L.image && L.image.width) { // (an ImageBitmap evicted from the cache has width 0)
      ctx.imageSmoothingEnabled = (w / L.image.width) < 2;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(L.image, this.tx, this.ty, w, h);
    } else {
      ctx.fillStyle = '#202226';
      ctx.fillRect(this.tx, this.ty, w, h);
    }
    if (L.overlay) {
      ctx.imageSmoothingEnabled = false;
      ctx.globalCompositeOperation = L.blend || 'source-over';
      ctx.drawImage(L.overlay, this.tx, this.ty, w, h);
      ctx.globalCompositeOperation = 'source-over';
    }
    ctx.strokeStyle = 'rgba(255,255,255,0.15)';
    ctx.lineWidth = 1;
    ctx.strokeRect(this.tx - 0.5, this.ty - 0.5, w + 1, h + 1);
    this.drawPrompts(ctx, L);
    this.drawGesture(ctx);
  }

  drawPrompts(ctx, L) {
    for (const p of (L.prompts || [])) {
      const col = (L.colours && L.colours.get(p.object)) || [240, 163, 94];
      const css = `rgb(${col[0]},${col[1]},${col[2]})`;
      if (p.kind === 'box') {
        const [x0, y0] = this.toScreen(p.data.x0, p.data.y0);
        const [x1, y1] = this.toScreen(p.data.x1, p.data.y1);
        ctx.setLineDash([5, 4]);
        ctx.strokeStyle = css;
        ctx.lineWidth = 1.5;
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        ctx.setLineDash([]);
      } else if (p.kind === 'point') {
        const [x, y] = this.toScreen(p.data.x, p.data.y);
        const pos = p.data.label !== 0;
        ctx.beginPath();
        ctx.arc(x, y, MARKER, 0, Math.PI * 2);
        ctx.fillStyle = pos ? 'rgba(40,170,80,0.9)' : 'rgba(210,60,50,0.9)';
        ctx.fill();
        ctx.lineWidth = p.uid === L.selectedPrompt ? 3 : 1.5;
        ctx.strokeStyle = p.uid === L.selectedPrompt ? '#ffffff' : css;
        ctx.stroke();
        ctx.strokeStyle = '#fff';
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.moveTo(x - 3, y); ctx.lineTo(x + 3, y);
        if (pos) { ctx.moveTo(x, y - 3); ctx.lineTo(x, y + 3); }
        ctx.stroke();
      }
    }
  }

  drawGesture(ctx) {
    const g = this.gesture;
    if (g && g.kind === 'prompt' && g.moved && g.button === 0) {
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = '#f0a35e';
      ctx.lineWidth = 1;
      ctx.strokeRect(Math.min(g.sx, g.x), Math.min(g.sy, g.y), Math.abs(g.x - g.sx), Math.abs(g.y - g.sy));
      ctx.setLineDash([]);
    }
    const brushing = this.tool === 'brush' || this.tool === 'eraser';
    if (g && g.points && g.points.length) {
      ctx.strokeStyle = g.kind === 'brush' ? 'rgba(95,191,106,0.6)' : 'rgba(224,90,79,0.6)';
      ctx.lineWidth = Math.max(1, 2 * this.brush * this.scale);
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      ctx.beginPath();
      g.points.forEach(([x, y], i) => {
        const [a, b] = this.toScreen(x, y);
        if (i === 0) ctx.moveTo(a, b); else ctx.lineTo(a, b);
      });
      if (g.points.length === 1) { const [a, b] = this.toScreen(...g.points[0]); ctx.lineTo(a + 0.01, b); }
      ctx.stroke();
    }
    if (brushing && this.cursor) {
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.arc(this.cursor[0], this.cursor[1], Math.max(2, this.brush * this.scale), 0, Math.PI * 2);
      ctx.stroke();
    }
  }
}
