// Talking to the engine server. The browser is signed in by an HttpOnly cookie (see DR013):
// requests are same-origin and carry no token; errors come back as data ({error: {text, ...}}).

export class ApiError extends Error {
  constructor(status, data) {
    const err = (data && data.error) || {};
    super(err.text || err.message || `the engine answered HTTP ${status}`);
    this.status = status;
    this.code = err.code || `http_${status}`;
    this.data = err;
  }
}

async function errorOf(resp) {
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  return new ApiError(resp.status, data);
}

export async function api(method, path, body, opts = {}) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', signal: opts.signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw await errorOf(resp);
  if (resp.status === 204) return null;
  return resp.json();
}

// An image endpoint as an ImageBitmap (null for 204 No Content). Pixels are decoded exactly
// (no colour conversion, no premultiplication): overlays are id maps, not pictures.
export async function fetchBitmap(path, opts = {}) {
  const resp = await fetch(path, { credentials: 'same-origin', cache: opts.cache || 'default', signal: opts.signal });
  if (resp.status === 204) return { bitmap: null, headers: resp.headers };
  if (!resp.ok) throw await errorOf(resp);
  const blob = await resp.blob();
  const bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  return { bitmap, headers: resp.headers };
}

// Follow a job until it ends: server-sent events, or long polling when events cannot be used.
// onProgress(job) is called for every update; resolves with the final job.
export function watchJob(jid, onProgress) {
  const terminal = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
  return new Promise((resolve) => {
    let done = false;
    let seq = null;
    const finish = (job) => { if (!done) { done = true; resolve(job); } };
    const poll = async () => {
      while (!done) {
        try {
          const q = seq === null ? '' : `&after=${seq}`;
          const job = await api('GET', `/v1/jobs/${jid}?wait=10${q}`);
          seq = job.seq;
          onProgress(job);
          if (terminal.has(job.state)) finish(job);
        } catch (e) {
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    if (typeof EventSource === 'undefined') { poll(); return; }
    const es = new EventSource(`/v1/jobs/${jid}/events`);
    const handle = (ev) => {
      const job = JSON.parse(ev.data);
      seq = job.seq;
      onProgress(job);
      if (terminal.has(job.state)) { es.close(); finish(job); }
    };
    es.addEventListener('progress', handle);
    es.addEventListener('end', handle);
    es.onerror = () => { if (!done) { es.close(); poll(); } };
  });
}
