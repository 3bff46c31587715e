// The native API (/api/v1) with the key kept in this tab's sessionStorage: sent as a
// Bearer header, never in a URL or a cookie.

const KEY = 'facecast.apiKey';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** A refusal of the API (or no answer at all: status 0), with its code and message. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  /** "message [code]", with the fields a 422 names. */
  get words() {
    const errors = this.details?.errors;
    const where = Array.isArray(errors) && errors.length
      ? ` (${errors.map((e) => `${(e.loc || []).slice(1).join('.')}: ${e.msg}`).join('; ')})`
      : '';
    return `${this.message}${where} [${this.code}]`;
  }
}

let onSignedOut = () => {};
/** What to do when the key is refused (revoked or deleted while the page was open). */
export function whenSignedOut(fn) { onSignedOut = fn; }

// calls in flight, on <html data-busy>: the page is settled when it reads 0 (what browser
// tests wait for before they look)
let busy = 0;
function track(delta) {
  busy += delta;
  document.documentElement.dataset.busy = String(busy);
}
track(0);

async function send(method, path, body, key) {
  const headers = { Authorization: `Bearer ${key}` };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  try {
    return await fetch(`/api/v1${path}`, { method, headers, body: payload, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'connection_error', `the service did not answer (${e.message})`);
  }
}

/** Count `fn` as a call in flight until what its caller does with the answer is done: the
 * caller's continuation runs as microtasks, before the next task lowers the count. */
export async function counted(fn) {
  track(1);
  try {
    return await fn();
  } finally {
    setTimeout(() => track(-1));
  }
}

async function refusal(response) {
  let err = {};
  try { err = (await response.json()).error || {}; } catch { /* not JSON */ }
  return new ApiError(response.status, err.code || 'http_error',
    err.message || `HTTP ${response.status}`, err.details);
}

/** One call: the answer's JSON (null for 204), or an ApiError. */
export function api(method, path, body, key = session.key) {
  return counted(async () => {
    const response = await send(method, path, body, key);
    if (response.status === 401 && key === session.key) onSignedOut();
    if (!response.ok) throw await refusal(response);
    return response.status === 204 ? null : response.json();
  });
}

/** A file the API serves behind the key (a voice sample), as an object URL. */
export function blobUrl(path) {
  return counted(async () => {
    const response = await send('GET', path, undefined, session.key);
    if (!response.ok) throw await refusal(response);
    return URL.createObjectURL(await response.blob());
  });
}

/** Upload a file as an asset (the API checks its size and type). */
export function upload(file) {
  const form = new FormData();
  form.append('file', file, file.name);
  return api('POST', '/assets', form);
}

/** "?a=1&b=x" from the values that are set. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Watch a live stream over WHEP (RFC 9725) in a few lines: a receive-only offer for video
 * and audio, every ICE candidate gathered (no trickle), POSTed to the stream's whep_url
 * with the key; the answer applied. Returns the connection, its media and the viewer's
 * resource (DELETE it to leave). */
export async function whep(url) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const media = new MediaStream();
  pc.addEventListener('track', (e) => media.addTrack(e.track));
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    }));
  }
  const response = await counted(() => fetch(url, { method: 'POST', cache: 'no-store',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${session.key}` },
    body: pc.localDescription.sdp }));
  if (response.status !== 201) {
    pc.close();
    throw await refusal(response);
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  return { pc, media, resource: new URL(response.headers.get('Location'), url).href };
}
