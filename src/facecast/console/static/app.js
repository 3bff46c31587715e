// The facecast studio: sign in with an API key, then pages for making talking photos,
// following jobs, the avatar and voice libraries, the account and (admin keys) the
// service's accounts. Everything goes through the native API (/api/v1).

import { api, ApiError, blobUrl, counted, query, session, upload, whenSignedOut, whep } from './api.js';
import { append, dataTable, field, fill, h, seconds, select, when } from './dom.js';

const CONFIG = JSON.parse(document.getElementById('console-config').textContent);
const ACTIVE = new Set(['queued', 'running']);
const POLL_MS = 500;  // jobs in progress are read this often (a short render lasts a second or two)

const top = document.getElementById('top');  // the account's part of the header (the brand is static)
const nav = document.getElementById('nav');
const main = document.getElementById('main');
const statusLine = document.getElementById('status');

let account = null;        // GET /account of the signed-in key
let leavePage = () => {};  // stops the current page's polling

/** Say what is happening (read out by screen readers). */
function say(text) { statusLine.textContent = text; }

/** An error in words with its code, where the user is looking. */
function errorBox(err) {
  const text = err instanceof ApiError ? err.words : String(err?.message || err);
  return h('p', { class: 'error', role: 'alert', testid: 'error-message' }, text);
}

/** Run an action: say what it does, show its refusal in `where`, keep the button busy. */
async function act(button, doing, where, fn) {
  if (button) button.disabled = true;
  say(doing);
  if (where) where.replaceChildren();
  try {
    const result = await fn();
    say('');
    return result;
  } catch (err) {
    say('');
    if (where) fill(where, errorBox(err)); else say(err instanceof ApiError ? err.words : String(err));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---- sign in -----------------------------------------------------------------------------

function signInPage(message) {
  top.replaceChildren();
  nav.replaceChildren();
  nav.hidden = true;
  const key = h('input', { type: 'password', autocomplete: 'off', testid: 'api-key-input',
    required: true, spellcheck: 'false' });
  const problem = h('div');
  if (message) fill(problem, h('p', { class: 'error', role: 'alert', testid: 'error-message' }, message));
  const button = h('button', { type: 'submit', class: 'primary', testid: 'sign-in' }, 'Sign in');
  const form = h('form', { class: 'panel signin', onsubmit: async (e) => {
    e.preventDefault();
    const value = key.value.trim();
    if (!value) return;
    const me = await act(button, 'Signing in…', problem, () => api('GET', '/account', undefined, value));
    if (!me) return;
    session.set(value);
    account = me;
    start();
  } },
  h('h2', {}, 'Sign in'),
  field('API key', key, 'Your key (fc_…). It stays in this browser tab only and is forgotten when the tab closes.'),
  problem, button);
  fill(main, form);
  key.focus();
}

function signOut(message) {
  leavePage();
  session.clear();
  account = null;
  history.replaceState(null, '', location.pathname);
  signInPage(message);
}

whenSignedOut(() => signOut('The service no longer accepts this key: sign in again.'));

// ---- the shell ---------------------------------------------------------------------------

const PAGES = {
  create: ['Create', createPage],
  dub: ['Dub', dubPage],
  clean: ['Clean', cleanPage],
  jobs: ['Jobs', jobsPage],
  avatars: ['Avatars', avatarsPage],
  voices: ['Voices', voicesPage],
  live: ['Live', livePage],
  account: ['Account', accountPage],
  admin: ['Admin', adminPage],
};

function credits() {
  return `${account.available} credits available`;
}

function shell() {
  const creditsNode = h('span', { id: 'credits' }, credits());
  fill(top, h('span', {}, account.name), creditsNode,
    h('button', { type: 'button', testid: 'sign-out', onclick: () => signOut() }, 'Sign out'));
  nav.hidden = false;
  fill(nav, Object.entries(PAGES)
    .filter(([name]) => name !== 'admin' || account.is_admin)
    .map(([name, [title]]) => h('a', { href: `#/${name}`, 'data-page': name }, title)));
}

async function refreshAccount() {
  account = await api('GET', '/account');
  const node = document.getElementById('credits');
  if (node) node.textContent = credits();
}

/** Create a job from one of the create pages, then follow it on the jobs page (the
 * header's credits first, since the job holds some of them). */
async function createJob(button, where, path, body) {
  const job = await act(button, 'Creating the job…', where, () => api('POST', path, body));
  if (!job) return;
  await refreshAccount().catch(() => {});
  location.hash = `#/jobs/${job.id}`;
}

function route() {
  leavePage();
  leavePage = () => {};
  const [name, arg] = location.hash.replace(/^#\/?/, '').split('/');
  const page = PAGES[name] && (name !== 'admin' || account.is_admin) ? name : 'create';
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.page === page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${PAGES[page][0]} · facecast studio`;
  main.replaceChildren();
  say('');
  PAGES[page][1](arg);
  main.focus({ preventScroll: true });
}

function start() {
  shell();
  // (replaceState: no hashchange, so the page is drawn once)
  if (!location.hash || location.hash === '#') history.replaceState(null, '', '#/create');
  route();
}

/** A Rename button that opens a small form in its place; `save(name)` does the renaming
 * (an ApiError is shown by the form), then `done()`. */
function renamer(what, current, save, done, problem) {
  const button = h('button', { type: 'button' }, 'Rename');
  button.addEventListener('click', () => {
    const input = h('input', { type: 'text', value: current, maxlength: 200, 'aria-label': `New name for ${what}` });
    const form = h('form', { class: 'row rename', onsubmit: async (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) return;
      const saved = await act(e.submitter, 'Renaming…', problem, () => save(name));
      if (saved) done();
    } }, input, h('button', { type: 'submit' }, 'Save'),
    h('button', { type: 'button', onclick: () => form.replaceWith(button) }, 'Cancel'));
    button.replaceWith(form);
    input.focus();
    input.select();
  });
  return button;
}

// ---- avatars (a grid used by the create page and the avatars page) -----------------------

/** A thumbnail grid of avatars with filters and pages; `onPick(avatar)` when one is chosen. */
function avatarPicker({ onPick, manage = false, pageSize = 12 } = {}) {
  const search = h('input', { type: 'search', placeholder: 'Name' });
  const gender = select([['', 'Any'], ['female', 'Female'], ['male', 'Male']]);
  const kind = select([['', 'Any'], ['photo', 'Photo'], ['video', 'Video']]);
  const mine = select([['', 'All'], ['false', 'Library'], ['true', 'Mine']]);
  const words = (v) => v.replace(/_/g, ' ');
  const age = select([['', 'Any'], ...CONFIG.avatar_ages.map((a) => [a, words(a)])]);
  const region = select([['', 'Any'], ...CONFIG.avatar_regions.map((r) => [r, words(r)])]);
  const grid = h('div', { class: 'grid', role: 'list' });
  const info = h('span', { class: 'muted' });
  const prev = h('button', { type: 'button' }, 'Previous');
  const next = h('button', { type: 'button' }, 'Next');
  const problem = h('div');
  let page = 1;
  let chosen = null;

  function card(avatar) {
    const picture = avatar.thumbnail_url
      ? h('img', { class: 'thumb', src: avatar.thumbnail_url, alt: '' })
      : h('span', { class: 'thumb', 'aria-hidden': 'true' }, (avatar.name || '?').slice(0, 1));
    const facts = [avatar.kind, avatar.status !== 'ready' ? avatar.status : null,
      avatar.custom ? 'yours' : 'library'].filter(Boolean).join(' · ');
    const button = h('button', { type: 'button', class: 'card', testid: 'avatar-card',
      'data-avatar-id': avatar.id, 'aria-pressed': String(chosen === avatar.id),
      onclick: () => {
        if (!onPick) return;
        chosen = avatar.id;
        for (const other of grid.querySelectorAll('.card')) {
          other.setAttribute('aria-pressed', String(other.dataset.avatarId === avatar.id));
        }
        onPick(avatar);
      } },
    picture, h('span', { class: 'name' }, avatar.name), h('span', { class: 'meta' }, facts));
    // a preview video plays while the card is pointed at or focused
    if (avatar.preview_url) {
      let video = null;
      const show = () => {
        if (video) return;
        video = h('video', { class: 'thumb', src: avatar.preview_url, muted: true, autoplay: true,
          loop: true, playsinline: true, 'aria-hidden': 'true' });
        video.muted = true;
        picture.replaceWith(video);
      };
      const hide = () => { if (video) { video.replaceWith(picture); video = null; } };
      button.addEventListener('mouseenter', show);
      button.addEventListener('focus', show);
      button.addEventListener('mouseleave', hide);
      button.addEventListener('blur', hide);
    }
    const item = h('div', { role: 'listitem' }, button);
    if (manage && avatar.custom) {
      append(item, renamer(avatar.name, avatar.name,
        (name) => api('PATCH', `/avatars/${avatar.id}`, { name }), load, problem));
      append(item, h('button', { type: 'button', class: 'danger', onclick: async (e) => {
        if (!confirm(`Delete the avatar "${avatar.name}"?`)) return;
        const done = await act(e.target, `Deleting ${avatar.id}…`, problem,
          () => api('DELETE', `/avatars/${avatar.id}`));
        if (done !== undefined) load();
      } }, 'Delete'));
    }
    return item;
  }

  async function load() {
    const params = { query: search.value.trim(), gender: gender.value, kind: kind.value,
      custom: mine.value, age: age.value, region: region.value, page, page_size: pageSize };
    const list = await act(null, 'Loading avatars…', problem, () => api('GET', `/avatars${query(params)}`));
    if (!list) return;
    fill(grid, list.items.map(card));
    if (!list.items.length) append(grid, h('p', { class: 'muted' }, 'No avatar matches.'));
    const pages = Math.max(1, Math.ceil(list.total / pageSize));
    info.textContent = `page ${page} of ${pages} · ${list.total} avatars`;
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
  }
  prev.onclick = () => { page -= 1; load(); };
  next.onclick = () => { page += 1; load(); };
  let timer;
  const reload = () => { clearTimeout(timer); timer = setTimeout(() => { page = 1; load(); }, 250); };
  search.addEventListener('input', reload);
  for (const s of [gender, kind, mine, age, region]) s.addEventListener('change', reload);
  load();
  const node = h('div', {},
    h('div', { class: 'row' }, field('Search avatars', search), field('Gender', gender),
      field('Age', age), field('Region', region), field('Kind', kind), field('Show', mine)),
    problem, grid, h('div', { class: 'pager' }, prev, next, info));
  return { node, reload: load };
}

// ---- a photo with its face check ---------------------------------------------------------

/** Draw the photo on a canvas with the face box the check found. */
async function drawPhoto(canvas, file, check) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const scale = Math.min(1, 360 / img.naturalWidth, 360 / img.naturalHeight);
    canvas.width = Math.round(img.naturalWidth * scale);
    canvas.height = Math.round(img.naturalHeight * scale);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    if (check?.face && check.image) {
      // the box is in the checked image's pixels (EXIF orientation applied, as here)
      const k = canvas.width / check.image.width;
      ctx.lineWidth = 3;
      ctx.strokeStyle = check.accepted ? '#1e9a4c' : '#e08a00';
      ctx.strokeRect(check.face.x * k, check.face.y * k, check.face.w * k, check.face.h * k);
    }
  } finally {
    URL.revokeObjectURL(url);
  }
}

// ---- a recording from the microphone -----------------------------------------------------

/** A Record / Stop button: `onFile(file)` gets the recording (WebM/Opus as the browser makes
 * it; the service checks it like any upload). */
function recorder(onFile, label = 'Record from the microphone') {
  const button = h('button', { type: 'button', testid: 'record' }, label);
  const info = h('span', { class: 'hint', 'aria-live': 'polite', testid: 'record-info' });
  let media = null;
  let clock = null;
  if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
    button.disabled = true;
    info.textContent = ' This browser cannot record here (recording needs https or localhost).';
  }
  button.addEventListener('click', async () => {
    if (media) { media.stop(); return; }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      info.textContent = ` No microphone: ${e.message}`;
      return;
    }
    const chunks = [];
    media = new MediaRecorder(stream);
    media.addEventListener('dataavailable', (e) => chunks.push(e.data));
    media.addEventListener('stop', () => {
      clearInterval(clock);
      for (const track of stream.getTracks()) track.stop();
      const type = media.mimeType || 'audio/webm';
      media = null;
      button.textContent = label;
      info.textContent = '';
      onFile(new File(chunks, 'recording.webm', { type }));
    });
    const started = performance.now();
    media.start();
    button.textContent = 'Stop recording';
    info.textContent = ' Recording… 0 s';
    clock = setInterval(() => {
      info.textContent = ` Recording… ${Math.floor((performance.now() - started) / 1000)} s`;
    }, 250);
  });
  return h('div', { class: 'row' }, button, info);
}

// ---- speech: a script with a voice, or an audio file (talking photos and dubs) ------------

/** The speech of a job; `changed()` is called whenever it changes. */
function speechPicker(problem, changed) {
  let audioAsset = null;
  const sayText = h('input', { type: 'radio', name: 'speech', value: 'text', checked: true });
  const sayAudio = h('input', { type: 'radio', name: 'speech', value: 'audio' });
  const script = h('textarea', { testid: 'script-input', maxlength: CONFIG.max_text_chars,
    placeholder: 'What should they say?' });
  const counter = h('small', { class: 'hint', 'aria-live': 'off' });
  const language = select([['', 'Any language']]);
  const gender = select([['', 'Any'], ['female', 'Female'], ['male', 'Male']]);
  const search = h('input', { type: 'search', placeholder: 'Name' });
  const voice = select([['', 'Default voice']], { testid: 'voice-select' });
  const sample = h('audio', { controls: true, hidden: true });
  const play = h('button', { type: 'button' }, 'Play a sample');
  const textPanel = h('div', {}, field('Script', script), counter,
    h('div', { class: 'row' }, field('Language', language), field('Gender', gender),
      field('Search voices', search)),
    h('div', { class: 'row' }, field('Voice', voice), play), sample);
  const audioInput = h('input', { type: 'file', accept: 'audio/*,video/*' });
  const audioInfo = h('div', { 'aria-live': 'polite' });
  const audioPanel = h('div', { hidden: true },
    field('Audio file', audioInput, 'WAV, MP3, M4A…: 1 s to 10 min of speech.'), audioInfo);

  async function loadVoices() {
    const params = { language: language.value, gender: gender.value, query: search.value.trim(),
      page_size: 100 };
    const list = await act(null, 'Loading voices…', problem, () => api('GET', `/voices${query(params)}`));
    if (!list) return;
    const keep = voice.value;
    fill(voice, h('option', { value: '' }, 'Default voice'), list.items.map((v) => h('option',
      { value: v.id }, `${v.name} (${[v.language, v.gender, v.engine].filter(Boolean).join(', ')})`)));
    if ([...voice.options].some((o) => o.value === keep)) voice.value = keep;
  }
  api('GET', '/languages').then((langs) => {
    append(language, langs.map((l) => h('option', { value: l.code }, `${l.name} (${l.code})`)));
  }).catch((err) => fill(problem, errorBox(err)));
  loadVoices();
  let voiceTimer;
  search.addEventListener('input', () => { clearTimeout(voiceTimer); voiceTimer = setTimeout(loadVoices, 250); });
  language.addEventListener('change', loadVoices);
  gender.addEventListener('change', loadVoices);
  play.addEventListener('click', async () => {
    if (!voice.value) { say('Pick a voice to hear its sample.'); return; }
    const url = await act(play, 'Fetching the sample…', problem,
      () => blobUrl(`/voices/${encodeURIComponent(voice.value)}/preview`));
    if (!url) return;
    sample.src = url;
    sample.hidden = false;
    sample.play().catch(() => {});
  });
  async function useAudio(file) {
    audioAsset = null;
    audioInfo.replaceChildren();
    update();
    if (!file) return;
    const asset = await act(null, 'Uploading the audio…', audioInfo, () => upload(file));
    if (!asset) return;
    audioAsset = asset;
    fill(audioInfo, h('p', { class: 'ok' }, `${asset.filename}: ${seconds(asset.info.duration || 0)} of sound`));
    update();
  }
  audioInput.addEventListener('change', () => useAudio(audioInput.files[0]));
  audioPanel.insertBefore(recorder((file) => { audioInput.value = ''; useAudio(file); }), audioInfo);
  function update() {
    textPanel.hidden = !sayText.checked;
    audioPanel.hidden = sayText.checked;
    counter.textContent = `${script.value.length} of ${CONFIG.max_text_chars} characters`;
    changed();
  }
  sayText.addEventListener('change', update);
  sayAudio.addEventListener('change', update);
  script.addEventListener('input', update);
  const node = h('div', {}, h('fieldset', {}, h('legend', {}, 'Speech from'),
    h('label', {}, sayText, ' a script'), h('label', {}, sayAudio, ' an audio file')), textPanel, audioPanel);
  return {
    node,
    isText: () => sayText.checked,
    /** What is still needed, or null. */
    missing: () => (sayText.checked ? (script.value.trim() ? null : 'a script')
      : (audioAsset ? null : 'an audio file')),
    /** Seconds of speech: the file's, or the script's at the rate the service prices. */
    seconds: () => (sayText.checked ? script.value.trim().length / CONFIG.chars_per_second
      : (audioAsset?.info.duration || 0)),
    /** The request's speech fields. */
    fields: () => (sayText.checked
      ? { text: script.value.trim(), ...(voice.value ? { voice: voice.value } : {}) }
      : { audio: { asset_id: audioAsset.id } }),
    update,
  };
}

/** "About N credits (…)", red when the account cannot pay. */
function estimateText(secs, textSpeech) {
  const cost = secs > 0 ? Math.max(1, Math.ceil(secs)) * account.prices.video_per_second : 0;
  return h('span', { testid: 'estimate', class: cost > account.available ? 'error' : '' },
    `About ${cost} credits (${seconds(secs)} of video)${textSpeech ? ', settled once the speech is made' : ''}; `
    + `you have ${account.available}.`);
}

// ---- the layout preview of a composition -------------------------------------------------

/** Draw the canvas as the service will compose it: the portrait fitted whole into the canvas,
 * times `scale`, centred at (x, y) fractions, in its mask, over the background colour. */
function drawLayout(canvas, img, { ratio, color, backdrop, mask, scale, x, y }) {
  const W = 320;
  const H = Math.round(W / ratio);
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = color || '#000000';
  ctx.fillRect(0, 0, W, H);
  if (backdrop) {  // a background picture covers the canvas, centre-cropped
    const k = Math.max(W / backdrop.naturalWidth, H / backdrop.naturalHeight);
    const bw = backdrop.naturalWidth * k;
    const bh = backdrop.naturalHeight * k;
    ctx.drawImage(backdrop, (W - bw) / 2, (H - bh) / 2, bw, bh);
  }
  if (!img) return;
  const fit = Math.min(W / img.naturalWidth, H / img.naturalHeight) * scale;
  const w = img.naturalWidth * fit;
  const hh = img.naturalHeight * fit;
  const left = x * W - w / 2;
  const topY = y * H - hh / 2;
  ctx.save();
  if (mask === 'circle') {
    ctx.beginPath();
    ctx.arc(x * W, y * H, Math.min(w, hh) / 2, 0, 2 * Math.PI);
    ctx.clip();
  }
  ctx.drawImage(img, left, topY, w, hh);
  ctx.restore();
}

// ---- create a talking photo --------------------------------------------------------------

function createPage() {
  const state = { photoAsset: null, photoOk: false, avatar: null, image: null };
  const problem = h('div');

  // who speaks
  const whoPhoto = h('input', { type: 'radio', name: 'who', value: 'photo', checked: true });
  const whoAvatar = h('input', { type: 'radio', name: 'who', value: 'avatar' });
  const photoInput = h('input', { type: 'file', accept: 'image/*', testid: 'photo-input' });
  const canvas = h('canvas', { class: 'photo', width: 0, height: 0, role: 'img',
    'aria-label': 'Your photo with the face the check found' });
  const verdict = h('div', { class: 'verdict', 'aria-live': 'polite' });
  const photoPanel = h('div', {}, field('Photo', photoInput,
    'JPEG, PNG, WebP, HEIC…: one face, looking at the camera.'), canvas, verdict);
  const picker = avatarPicker({ onPick: (avatar) => {
    state.avatar = avatar;
    state.image = null;
    if (avatar.photo_url) {
      const img = new Image();
      img.src = avatar.photo_url;
      img.decode().then(() => { state.image = img; update(); }).catch(() => {});
    }
    update();
  } });
  const avatarPanel = h('div', { hidden: true }, picker.node);

  photoInput.addEventListener('change', async () => {
    const file = photoInput.files[0];
    state.photoAsset = null;
    state.photoOk = false;
    state.image = null;
    verdict.replaceChildren();
    update();
    if (!file) return;
    await drawPhoto(canvas, file, null).catch(() => {});
    const check = await act(null, 'Uploading the photo…', verdict, async () => {
      const asset = await upload(file);
      say('Checking the face…');
      const result = await api('POST', '/face-check', { photo: { asset_id: asset.id } });
      return { asset, result };
    });
    if (!check) return;
    await drawPhoto(canvas, file, check.result).catch(() => {});
    state.photoAsset = check.asset;
    state.photoOk = check.result.accepted;
    const img = new Image();
    img.src = URL.createObjectURL(file);
    img.decode().then(() => { state.image = img; update(); }).catch(() => {});
    fill(verdict, check.result.accepted
      ? h('p', { class: 'ok', testid: 'face-verdict' }, `Face found: ${check.result.message}`)
      : h('p', { class: 'error', testid: 'face-verdict', role: 'alert' },
        `Refused: ${check.result.message} [${check.result.reason}]`));
    update();
  });

  const speech = speechPicker(problem, () => update());

  // the picture
  const size = select(CONFIG.sizes.map((s) => [s, s === 'source' ? 'As the photo' : s]));
  const aspect = select([['', 'As the photo'], ...CONFIG.aspects.map((a) => [a, a])]);
  const expression = select([['', 'Natural']]);
  const expressionInfo = h('div', { class: 'hint', 'aria-live': 'polite' });
  let expressions = [];
  api('GET', '/expressions').then((list) => {
    expressions = list.items;
    append(expression, list.items.map((x) => h('option', { value: x.key }, x.name)));
  }).catch((err) => fill(problem, errorBox(err)));
  expression.addEventListener('change', () => {
    const x = expressions.find((e) => e.key === expression.value);
    fill(expressionInfo, x ? [x.description, x.preview_url
      ? h('video', { class: 'expression', src: x.preview_url, muted: true, autoplay: true, loop: true,
        playsinline: true, 'aria-label': `Preview of ${x.name}` }) : null] : null);
  });
  const prompt = h('textarea', { maxlength: CONFIG.max_prompt_chars, rows: 2,
    placeholder: 'e.g. while talking, nodding, then smiling; slow zoom in' });
  const promptInfo = h('div', { 'aria-live': 'polite' });
  let promptTimer;
  // what the prompt will do and what it will not use, as it is typed
  prompt.addEventListener('input', () => {
    clearTimeout(promptTimer);
    promptTimer = setTimeout(async () => {
      const text = prompt.value.trim();
      if (!text) { promptInfo.replaceChildren(); return; }
      const read = await act(null, 'Reading the prompt…', promptInfo, () => api('POST', '/prompt-check', { prompt: text }));
      if (!read || prompt.value.trim() !== text) return;
      fill(promptInfo, read.actions.length ? h('p', { class: 'ok' }, `Will do: ${read.actions.join('; ')}`) : null,
        read.unused.length ? h('p', { class: 'warn', testid: 'prompt-unused' },
          `Will not be rendered: ${read.unused.map((u) => `“${u}”`).join(', ')}`) : null);
    }, 300);
  });
  const background = h('input', { type: 'color', value: '#20252e', 'aria-label': 'Background colour' });
  const useBackground = h('input', { type: 'checkbox' });
  const mask = select([['none', 'None'], ['circle', 'Circle'], ['rect', 'Rectangle']]);
  const backdropInput = h('input', { type: 'file', accept: 'image/*' });
  const backdropInfo = h('div', { 'aria-live': 'polite' });
  let backdrop = null;  // {asset, img}
  backdropInput.addEventListener('change', async () => {
    const file = backdropInput.files[0];
    backdrop = null;
    backdropInfo.replaceChildren();
    update();
    if (!file) return;
    const asset = await act(null, 'Uploading the background…', backdropInfo, () => upload(file));
    if (!asset) return;
    const img = new Image();
    img.src = URL.createObjectURL(file);
    await img.decode().catch(() => {});
    backdrop = { asset, img };
    useBackground.checked = false;  // a colour or a picture, not both
    fill(backdropInfo, h('p', { class: 'ok' }, `Background: ${asset.filename}`));
    update();
  });
  const scale = h('input', { type: 'range', min: 0.3, max: 1.5, step: 0.05, value: '1' });
  const posX = h('input', { type: 'range', min: 0, max: 1, step: 0.01, value: '0.5' });
  const posY = h('input', { type: 'range', min: 0, max: 1, step: 0.01, value: '0.5' });
  const layout = h('canvas', { class: 'layout', role: 'img', 'aria-label': 'Layout preview' });
  const photoOptions = h('div', {},
    h('div', { class: 'row' }, field('Size', size), field('Aspect', aspect)),
    h('div', { class: 'row' }, field('Expression', expression)), expressionInfo,
    field('Prompt (optional)', prompt, 'Steers expression, gestures and camera.'), promptInfo,
    h('details', {}, h('summary', {}, 'Layout: background, mask, position, scale'),
      h('div', { class: 'row' }, h('label', {}, useBackground, ' Background colour'),
        h('span', {}, background), field('Mask', mask)),
      field('Background picture', backdropInput), backdropInfo,
      h('div', { class: 'row' }, field('Scale', scale), field('Across', posX), field('Down', posY)),
      layout));

  // estimate and create
  const estimate = h('p', { 'aria-live': 'polite' });
  const create = h('button', { type: 'button', class: 'primary', testid: 'create-button' }, 'Create video');

  function composition() {
    const c = {};
    if (backdrop) c.background = { asset_id: backdrop.asset.id };
    else if (useBackground.checked) c.background_color = background.value;
    if (mask.value !== 'none') c.mask = mask.value;
    if (Number(scale.value) !== 1) c.scale = Number(scale.value);
    if (Number(posX.value) !== 0.5 || Number(posY.value) !== 0.5) c.position = [Number(posX.value), Number(posY.value)];
    return Object.keys(c).length ? c : null;
  }

  function update() {
    photoPanel.hidden = !whoPhoto.checked;
    avatarPanel.hidden = whoPhoto.checked;
    // a video avatar keeps its recording's size and motion
    photoOptions.hidden = !whoPhoto.checked && state.avatar?.kind === 'video';
    const img = state.image;
    const [aw, ah] = aspect.value ? aspect.value.split(':').map(Number)
      : [img?.naturalWidth || 1, img?.naturalHeight || 1];
    drawLayout(layout, img, { ratio: aw / ah, color: useBackground.checked ? background.value : '#000000',
      backdrop: backdrop?.img,
      mask: mask.value, scale: Number(scale.value), x: Number(posX.value), y: Number(posY.value) });
    const who = whoPhoto.checked ? state.photoOk : state.avatar !== null;
    const missing = [!who && (whoPhoto.checked ? 'a photo that passes the face check' : 'an avatar'),
      speech.missing()].filter(Boolean);
    create.disabled = missing.length > 0;
    fill(estimate, missing.length
      ? h('span', { class: 'muted' }, `Still needed: ${missing.join(' and ')}.`)
      : estimateText(speech.seconds(), speech.isText()));
  }
  for (const node of [whoPhoto, whoAvatar]) node.addEventListener('change', update);
  useBackground.addEventListener('change', () => {
    if (useBackground.checked && backdrop) { backdrop = null; backdropInput.value = ''; backdropInfo.replaceChildren(); }
  });
  for (const node of [aspect, useBackground, background, mask, scale, posX, posY]) node.addEventListener('input', update);

  create.addEventListener('click', async () => {
    const body = whoPhoto.checked ? { photo: { asset_id: state.photoAsset.id } } : { avatar_id: state.avatar.id };
    Object.assign(body, speech.fields());
    if (!photoOptions.hidden) {
      body.size = size.value;
      if (aspect.value) body.aspect = aspect.value;
      if (expression.value) body.expression = expression.value;
      if (prompt.value.trim()) body.prompt = prompt.value.trim();
      const c = composition();
      if (c) body.composition = c;
    }
    await createJob(create, problem, '/talking-photos', body);
  });

  fill(main, h('h2', {}, 'Create a talking photo'),
    h('div', { class: 'cols' },
      h('section', { class: 'panel', 'aria-labelledby': 'who-h' }, h('h3', { id: 'who-h' }, '1. Who speaks'),
        h('fieldset', {}, h('legend', {}, 'Face from'),
          h('label', {}, whoPhoto, ' a photo'), h('label', {}, whoAvatar, ' an avatar')),
        photoPanel, avatarPanel),
      h('div', {},
        h('section', { class: 'panel', 'aria-labelledby': 'say-h' }, h('h3', { id: 'say-h' }, '2. What they say'),
          speech.node),
        h('section', { class: 'panel', 'aria-labelledby': 'pic-h' }, h('h3', { id: 'pic-h' }, '3. Picture'), photoOptions),
        h('section', { class: 'panel', 'aria-labelledby': 'go-h' }, h('h3', { id: 'go-h' }, '4. Create'),
          estimate, problem, create))));
  speech.update();
}

// ---- a video upload shown in the page (dub, clean-up, video avatars) ----------------------

/** A video file input that uploads the file as an asset and shows it. */
function videoUpload(problem, changed, { testid } = {}) {
  const input = h('input', { type: 'file', accept: 'video/*', testid });
  const player = h('video', { controls: true, hidden: true, class: 'upload', playsinline: true, muted: true });
  const info = h('div', { 'aria-live': 'polite' });
  const box = { asset: null, player, node: h('div', {}, field('Video', input,
    'MP4, MOV, MKV, WebM or AVI, longer than 5 s.'), player, info) };
  input.addEventListener('change', async () => {
    const file = input.files[0];
    box.asset = null;
    info.replaceChildren();
    changed();
    if (!file) return;
    player.src = URL.createObjectURL(file);
    player.hidden = false;
    const asset = await act(null, 'Uploading the video…', info, () => upload(file));
    if (!asset) return;
    box.asset = asset;
    const v = asset.info;
    fill(info, h('p', { class: 'ok' }, `${asset.filename}: ${v.width}x${v.height}, ${seconds(v.duration || 0)}`));
    changed();
  });
  return box;
}

// ---- dub a video -------------------------------------------------------------------------

function dubPage() {
  const problem = h('div');
  const estimate = h('p', { 'aria-live': 'polite' });
  const create = h('button', { type: 'button', class: 'primary' }, 'Dub the video');
  const video = videoUpload(problem, () => update());
  const speech = speechPicker(problem, () => update());
  function update() {
    const missing = [!video.asset && 'a video', speech.missing()].filter(Boolean);
    create.disabled = missing.length > 0;
    fill(estimate, missing.length ? h('span', { class: 'muted' }, `Still needed: ${missing.join(' and ')}.`)
      : estimateText(speech.seconds(), speech.isText()));
  }
  create.addEventListener('click', async () => {
    const body = { video: { asset_id: video.asset.id }, ...speech.fields() };
    await createJob(create, problem, '/dubs', body);
  });
  fill(main, h('h2', {}, 'Dub a video'), h('p', { class: 'muted' },
    'The person in the video says new words: the same video with new lips, looped when the speech is longer.'),
  h('div', { class: 'cols' },
    h('section', { class: 'panel' }, h('h3', {}, '1. The video'), video.node),
    h('div', {}, h('section', { class: 'panel' }, h('h3', {}, '2. What they say'), speech.node),
      h('section', { class: 'panel' }, h('h3', {}, '3. Create'), estimate, problem, create))));
  speech.update();
}

// ---- clean a video: rectangles drawn on a frame ------------------------------------------

function cleanPage() {
  const problem = h('div');
  const areas = [];  // {kind, box: [x1, y1, x2, y2] in video pixels}
  const frame = h('canvas', { class: 'frame', testid: 'clean-frame', role: 'img',
    'aria-label': 'A frame of the video: drag to mark an area' });
  const kind = select([['subtitle', 'Subtitles'], ['watermark', 'Watermark']]);
  const list = h('ul', { class: 'areas' });
  const at = h('input', { type: 'range', min: 0, max: 1, step: 0.01, value: '0.5' });
  const create = h('button', { type: 'button', class: 'primary', testid: 'clean-button' }, 'Clean the video');
  const note = h('p', { 'aria-live': 'polite' });
  // keyboard users type an area in video pixels
  const typed = ['x1', 'y1', 'x2', 'y2'].map((n) => h('input', { type: 'number', min: 0, 'aria-label': n, placeholder: n }));
  const addTyped = h('button', { type: 'button' }, 'Add area');
  let drag = null;
  const video = videoUpload(problem, () => { areas.length = 0; update(); });
  const player = video.player;

  function scaleOf() { return player.videoWidth ? frame.width / player.videoWidth : 1; }
  function draw(extra) {
    if (!player.videoWidth) return;
    const k = Math.min(1, 640 / player.videoWidth);
    frame.width = Math.round(player.videoWidth * k);
    frame.height = Math.round(player.videoHeight * k);
    const ctx = frame.getContext('2d');
    ctx.drawImage(player, 0, 0, frame.width, frame.height);
    ctx.lineWidth = 2;
    for (const a of [...areas, ...(extra ? [extra] : [])]) {
      ctx.strokeStyle = a.kind === 'subtitle' ? '#ffd400' : '#ff3bd0';
      const [x1, y1, x2, y2] = a.box.map((v) => v * k);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    }
  }
  player.addEventListener('loadedmetadata', () => { player.currentTime = player.duration * Number(at.value); });
  player.addEventListener('seeked', () => draw());
  at.addEventListener('input', () => { if (player.duration) player.currentTime = player.duration * Number(at.value); });
  const point = (e) => {
    const r = frame.getBoundingClientRect();
    const k = scaleOf() * (r.width / frame.width);
    return [Math.max(0, Math.min(player.videoWidth, (e.clientX - r.left) / k)),
      Math.max(0, Math.min(player.videoHeight, (e.clientY - r.top) / k))];
  };
  const boxOf = (p, q) => [Math.min(p[0], q[0]), Math.min(p[1], q[1]), Math.max(p[0], q[0]), Math.max(p[1], q[1])]
    .map(Math.round);
  frame.addEventListener('pointerdown', (e) => { if (player.videoWidth) { drag = point(e); frame.setPointerCapture(e.pointerId); } });
  frame.addEventListener('pointermove', (e) => { if (drag) draw({ kind: kind.value, box: boxOf(drag, point(e)) }); });
  frame.addEventListener('pointerup', (e) => {
    if (!drag) return;
    const box = boxOf(drag, point(e));
    drag = null;
    if (box[2] - box[0] >= 4 && box[3] - box[1] >= 4) areas.push({ kind: kind.value, box });
    update();
  });
  addTyped.addEventListener('click', () => {
    const [x1, y1, x2, y2] = typed.map((t) => Number(t.value));
    if (!(x2 > x1 && y2 > y1)) { say('An area needs x2 > x1 and y2 > y1.'); return; }
    areas.push({ kind: kind.value, box: [x1, y1, x2, y2] });
    for (const t of typed) t.value = '';
    update();
  });

  function update() {
    draw();
    fill(list, areas.map((a, i) => h('li', {}, `${a.kind === 'subtitle' ? 'Subtitles' : 'Watermark'} `
      + `[${a.box.join(', ')}] `, h('button', { type: 'button', 'aria-label': `Remove area ${i + 1}`,
      onclick: () => { areas.splice(i, 1); update(); } }, 'Remove'))));
    create.disabled = !video.asset;
    fill(note, !video.asset ? h('span', { class: 'muted' }, 'Still needed: a video.')
      : areas.length ? `${areas.length} area${areas.length > 1 ? 's' : ''} to clean.`
        : 'No area drawn: subtitles and watermarks will be found automatically.');
  }
  create.addEventListener('click', async () => {
    const body = { video: { asset_id: video.asset.id },
      subtitle_areas: areas.filter((a) => a.kind === 'subtitle').map((a) => a.box),
      watermark_areas: areas.filter((a) => a.kind === 'watermark').map((a) => a.box) };
    await createJob(create, problem, '/cleanups', body);
  });
  fill(main, h('h2', {}, 'Clean a video'), h('p', { class: 'muted' },
    'Removes burned-in subtitles and watermarks. Drag rectangles over them on a frame, or draw none to let detection find them.'),
  h('div', { class: 'cols' },
    h('section', { class: 'panel' }, h('h3', {}, '1. The video'), video.node),
    h('section', { class: 'panel' }, h('h3', {}, '2. What to remove'),
      h('div', { class: 'row' }, field('Frame at', at), field('Marking', kind)), frame,
      h('div', { class: 'row' }, typed, addTyped), list, note, problem, create)));
  update();
}

// ---- jobs --------------------------------------------------------------------------------

const KIND_NAMES = { talking_photo: 'Talking photo', avatar_video: 'Video avatar', dub_video: 'Dub',
  clean_video: 'Clean-up', tts: 'Speech', voice_clone: 'Voice clone', avatar_clone: 'Video avatar analysis' };

/** The mouth track (visemes JSON) as a strip: how open the mouth is over time. */
async function drawTrack(canvas, url) {
  const response = await fetch(url);
  if (!response.ok) return;
  const track = await response.json();
  const jaw = (track.channels || []).indexOf('jaw');
  if (jaw < 0) return;
  const values = (track.frames || []).map((f) => f[jaw]);
  if (!values.length) return;
  canvas.width = canvas.clientWidth || 600;
  canvas.height = 60;
  const ctx = canvas.getContext('2d');
  const top = Math.max(...values, 1e-6);
  ctx.fillStyle = '#2b4c7e';
  const w = canvas.width / values.length;
  values.forEach((v, i) => { const bar = (v / top) * 56; ctx.fillRect(i * w, 58 - bar, Math.max(1, w), bar); });
}

// where each kind of job is created, and which of its inputs were files
const CREATE_PATHS = { talking_photo: '/talking-photos', avatar_video: '/talking-photos', dub_video: '/dubs',
  clean_video: '/cleanups', tts: '/speech', voice_clone: '/voices/clones' };
const CAPTION_PARAMS = ['captions', 'burn_captions', 'caption_position', 'caption_size'];

/** The create request that makes `job` again with the same inputs (its stored files by asset
 * id), or null when it cannot be rebuilt (a composition with its own background or layer
 * files). A file removed since (uploads expire) is refused by the API, in words. */
function retryRequest(job) {
  const path = CREATE_PATHS[job.kind];
  if (!path) return null;
  const body = {};
  for (const [key, value] of Object.entries(job.input || {})) {
    if (value === null || value === undefined || CAPTION_PARAMS.includes(key)) continue;
    const asset = key.match(/^(.+)_asset_id$/);
    if (asset) body[asset[1]] = { asset_id: value };
    else body[key] = value;
  }
  const p = job.input || {};
  if (p.captions || p.burn_captions) {
    body.captions = { format: p.captions || null, burn: !!p.burn_captions, position: p.caption_position,
      size: p.caption_size };
  }
  if (body.composition) {
    const c = body.composition;
    if (c.background || (c.layers || []).some((l) => l.input)) return null;
    body.composition = Object.fromEntries(Object.entries(c).filter(([k, v]) => v !== null && k !== 'background'));
  }
  return { path, body };
}

function jobsPage(focusId) {
  const list = h('ul', { class: 'jobs' });
  const problem = h('div');
  const player = h('section', { class: 'panel player', hidden: true, 'aria-labelledby': 'player-h' });
  const status = select([['', 'Any status'], ...['queued', 'running', 'succeeded', 'failed', 'canceled', 'expired'].map((s) => [s, s])]);
  const info = h('span', { class: 'muted' });
  const prev = h('button', { type: 'button' }, 'Newer');
  const next = h('button', { type: 'button' }, 'Older');
  const rows = new Map();
  const pageSize = 20;
  let page = 1;
  let timer = null;
  let gone = false;
  leavePage = () => { gone = true; clearTimeout(timer); };

  function play(job) {
    const video = h('video', { controls: true, testid: 'result-video', src: job.result.files.video.url,
      preload: 'auto', playsinline: true });
    const track = h('canvas', { class: 'track', role: 'img', 'aria-label': 'Mouth opening over time' });
    const info = job.result.info || {};
    const unused = info.prompt_unused || [];
    const cleaned = job.kind === 'clean_video'
      ? h('canvas', { class: 'frame', role: 'img', 'aria-label': 'What was cleaned, on a frame of the result' }) : null;
    fill(player, h('h3', { id: 'player-h' }, `${KIND_NAMES[job.kind] || job.kind} ${job.id}`), video,
      job.result.files.visemes ? track : null,
      job.result.quality ? h('p', { class: 'muted' }, `Lip-sync check: ${job.result.quality.verdict}`
        + (job.result.quality.reasons.length ? ` (${job.result.quality.reasons.join('; ')})` : '')) : null,
      unused.length ? h('p', { class: 'warn' }, `Not used from the prompt: ${unused.map((u) => `“${u}”`).join(', ')}`) : null,
      cleaned ? h('p', {}, `Cleaned ${(info.subtitle_areas || []).length} subtitle and `
        + `${(info.watermark_areas || []).length} watermark area(s)${info.detected ? ', found automatically' : ''}.`) : null,
      cleaned);
    player.hidden = false;
    if (job.result.files.visemes) drawTrack(track, job.result.files.visemes.url).catch(() => {});
    if (cleaned) {
      // the areas over the result's first frame
      video.addEventListener('loadeddata', () => {
        const k = Math.min(1, 640 / video.videoWidth);
        cleaned.width = Math.round(video.videoWidth * k);
        cleaned.height = Math.round(video.videoHeight * k);
        const ctx = cleaned.getContext('2d');
        ctx.drawImage(video, 0, 0, cleaned.width, cleaned.height);
        ctx.lineWidth = 2;
        for (const [boxes, colour] of [[info.subtitle_areas, '#ffd400'], [info.watermark_areas, '#ff3bd0']]) {
          ctx.strokeStyle = colour;
          for (const [x1, y1, x2, y2] of boxes || []) ctx.strokeRect(x1 * k, y1 * k, (x2 - x1) * k, (y2 - y1) * k);
        }
      }, { once: true });
    }
    video.focus();
  }

  function row(job) {
    const node = h('li', { class: 'panel job', testid: 'job-row', 'data-job-id': job.id });
    const badge = h('span', { class: 'badge', testid: 'job-status' });
    const bar = h('progress', { max: 100, value: 0, testid: 'job-progress' });
    const stage = h('span', { class: 'hint' });
    const actions = h('div', { class: 'actions' });
    const err = h('div', { class: 'err' });
    const thumb = h('span', { class: 'jobthumb', 'aria-hidden': 'true' });
    const title = h('div', { class: 'head' }, thumb, h('div', {},
      h('div', { class: 'title' }, `${KIND_NAMES[job.kind] || job.kind} · ${job.id}`),
      h('div', { class: 'when' }, when(job.created_at)), badge));
    append(node, title, h('div', {}, bar, stage), actions, err);
    const entry = { node, thumb, badge, bar, stage, actions, err, job: null };
    rows.set(job.id, entry);
    return entry;
  }

  function show(entry, job) {
    const before = entry.job;
    entry.job = job;
    entry.badge.textContent = job.status;
    entry.badge.className = `badge ${job.status}`;
    entry.bar.value = job.progress;
    entry.bar.setAttribute('aria-label', `${job.id} progress`);
    // an ended job without a cost was not charged: its hold went back to the account
    const money = job.cost != null ? `cost ${job.cost} credits`
      : ACTIVE.has(job.status) ? `holds ${job.cost_estimate} credits` : 'not charged';
    entry.stage.textContent = `${job.stage || job.status} · ${money}`;
    if (before && before.status === job.status && !!before.result === !!job.result) return;
    const buttons = [];
    const video = job.result?.files?.video;
    // the result's first frame as the row's thumbnail
    fill(entry.thumb, video ? h('video', { src: `${video.url}#t=0.1`, preload: 'metadata', muted: true }) : null);
    if (video) buttons.push(h('button', { type: 'button', onclick: () => play(job) }, 'Play'));
    const file = video || Object.values(job.result?.files || {})[0];
    if (file) {
      buttons.push(h('a', { class: 'button', href: file.url, download: '', testid: 'download-link' }, 'Download'));
    }
    if (ACTIVE.has(job.status)) {
      buttons.push(h('button', { type: 'button', onclick: (e) => act(e.target, `Canceling ${job.id}…`, entry.err,
        () => api('POST', `/jobs/${job.id}/cancel`)).then(poll) }, 'Cancel'));
    } else {
      buttons.push(h('button', { type: 'button', class: 'danger', onclick: async (e) => {
        if (!confirm(`Delete ${job.id} and its files?`)) return;
        const done = await act(e.target, `Deleting ${job.id}…`, entry.err, () => api('DELETE', `/jobs/${job.id}`));
        if (done !== undefined) { entry.node.remove(); rows.delete(job.id); }
      } }, 'Delete'));
    }
    const again = ['failed', 'canceled'].includes(job.status) && retryRequest(job);
    if (again) {
      buttons.push(h('button', { type: 'button', onclick: async (e) => {
        const made = await act(e.target, `Trying ${job.id} again…`, entry.err, () => api('POST', again.path, again.body));
        if (made) { page = 1; poll(); }
      } }, 'Retry'));
    }
    fill(entry.actions, buttons);
    fill(entry.err, job.error ? h('p', { class: 'error', testid: 'error-message' },
      `${job.error.message} [${job.error.code}]`) : null);
  }

  async function poll() {
    clearTimeout(timer);
    const params = { status: status.value, page, page_size: pageSize };
    let data;
    try {
      data = await api('GET', `/jobs${query(params)}`);
    } catch (err) {
      if (!gone) fill(problem, errorBox(err));
      return;
    }
    if (gone) return;
    problem.replaceChildren();
    const order = data.items.map((job) => {
      const entry = rows.get(job.id) || row(job);
      show(entry, job);
      return entry.node;
    });
    for (const [id, entry] of rows) if (!data.items.some((j) => j.id === id)) { entry.node.remove(); rows.delete(id); }
    fill(list, order);
    if (!data.items.length) append(list, h('li', { class: 'muted' }, 'No jobs yet: make one on the Create page.'));
    const pages = Math.max(1, Math.ceil(data.total / pageSize));
    info.textContent = `page ${page} of ${pages} · ${data.total} jobs`;
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    const active = data.items.filter((j) => ACTIVE.has(j.status)).length;
    say(active ? `${active} job${active > 1 ? 's' : ''} in progress…` : '');
    if (active) timer = setTimeout(poll, POLL_MS);
    else refreshAccount().catch(() => {});
  }
  status.addEventListener('change', () => { page = 1; poll(); });
  prev.onclick = () => { page -= 1; poll(); };
  next.onclick = () => { page += 1; poll(); };

  fill(main, h('h2', {}, 'Jobs'), player,
    h('div', { class: 'row' }, field('Status', status), h('div', { class: 'pager' }, prev, next, info)),
    problem, list);
  poll().then(() => {
    const entry = focusId && rows.get(focusId);
    if (entry) entry.node.scrollIntoView({ block: 'nearest' });
  });
}

// ---- avatars page ------------------------------------------------------------------------

function avatarsPage() {
  const picker = avatarPicker({ manage: true, pageSize: 24 });
  const name = h('input', { type: 'text', maxlength: 200, required: true });
  const file = h('input', { type: 'file', accept: 'image/*,video/*', required: true });
  const problem = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Create avatar');
  let timer = null;
  let gone = false;
  leavePage = () => { gone = true; clearTimeout(timer); };

  /** A video avatar's analysis: its job's progress until the avatar is ready or failed. */
  async function follow(avatar) {
    const bar = h('progress', { max: 100, value: 0, 'aria-label': `${avatar.name}: analysing the recording` });
    const stage = h('span', { class: 'hint' }, 'queued');
    fill(problem, h('p', {}, `Analysing the recording of ${avatar.name} (${avatar.id})…`), bar, stage);
    for (;;) {
      let job;
      try { job = await api('GET', `/jobs/${avatar.job_id}`); } catch (err) { fill(problem, errorBox(err)); return; }
      if (gone) return;
      bar.value = job.progress;
      stage.textContent = ` ${job.stage || job.status}`;
      if (!ACTIVE.has(job.status)) {
        fill(problem, job.status === 'succeeded' ? h('p', { class: 'ok' }, `${avatar.name} is ready.`)
          : h('p', { class: 'error', testid: 'error-message' }, job.error ? `${job.error.message} [${job.error.code}]` : job.status));
        picker.reload();
        return;
      }
      await new Promise((resolve) => { timer = setTimeout(resolve, POLL_MS); });
    }
  }

  const form = h('form', { class: 'panel', onsubmit: async (e) => {
    e.preventDefault();
    if (!file.files[0] || !name.value.trim()) return;
    const made = await act(button, 'Uploading and checking…', problem, async () => {
      const asset = await upload(file.files[0]);
      const media = { asset_id: asset.id };
      return api('POST', '/avatars', { name: name.value.trim(),
        ...(asset.kind === 'video' ? { video: media } : { photo: media }) });
    });
    if (!made) return;
    form.reset();
    picker.reload();
    if (made.status === 'processing' && made.job_id) follow(made);
    else fill(problem, h('p', { class: 'ok' }, `Made ${made.id}.`));
  } }, h('h3', {}, 'New avatar'),
  h('div', { class: 'row' }, field('Name', name), field('Photo or recording', file,
    'A portrait photo, or a video of the person speaking (5 s to 10 min), analysed once.')), problem, button);
  fill(main, h('h2', {}, 'Avatars'), form, h('section', { class: 'panel' }, picker.node));
}

// ---- voices page -------------------------------------------------------------------------

function voicesPage() {
  const search = h('input', { type: 'search', placeholder: 'Name' });
  const custom = select([['', 'All'], ['false', 'Built in'], ['true', 'My clones']]);
  const body = h('tbody');
  const problem = h('div');
  const sample = h('audio', { controls: true, hidden: true });
  const pageSize = 20;
  let page = 1;
  const info = h('span', { class: 'muted' });
  const prev = h('button', { type: 'button', onclick: () => { page -= 1; load(); } }, 'Previous');
  const next = h('button', { type: 'button', onclick: () => { page += 1; load(); } }, 'Next');
  async function load() {
    const list = await act(null, 'Loading voices…', problem,
      () => api('GET', `/voices${query({ query: search.value.trim(), custom: custom.value, page, page_size: pageSize })}`));
    if (!list) return;
    const pages = Math.max(1, Math.ceil(list.total / pageSize));
    info.textContent = `page ${page} of ${pages} · ${list.total} voices`;
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    fill(body, list.items.map((v) => h('tr', {},
      h('td', {}, v.name), h('td', {}, v.language), h('td', {}, v.gender || ''), h('td', { class: 'wide-only' }, v.engine),
      h('td', {}, h('button', { type: 'button', 'aria-label': `Play a sample of ${v.name}`, onclick: async (e) => {
        const url = await act(e.target, 'Fetching the sample…', problem, () => blobUrl(`/voices/${encodeURIComponent(v.id)}/preview`));
        if (!url) return;
        sample.src = url; sample.hidden = false; sample.play().catch(() => {});
      } }, 'Play'),
      v.custom ? renamer(v.name, v.name,
        (name) => api('PATCH', `/voices/${encodeURIComponent(v.id)}`, { name }), load, problem) : null,
      v.custom ? h('button', { type: 'button', class: 'danger', onclick: async (e) => {
        if (!confirm(`Delete the voice "${v.name}"?`)) return;
        const done = await act(e.target, 'Deleting…', problem, () => api('DELETE', `/voices/${encodeURIComponent(v.id)}`));
        if (done !== undefined) load();
      } }, 'Delete') : null))));
  }
  let timer;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { page = 1; load(); }, 250); });
  custom.addEventListener('change', () => { page = 1; load(); });
  load();
  const cloneName = h('input', { type: 'text', maxlength: 100, required: true });
  const cloneFile = h('input', { type: 'file', accept: 'audio/*,video/*', required: true });
  const cloneButton = h('button', { type: 'submit', class: 'primary' }, 'Clone voice');
  const cloneProblem = h('div', { 'aria-live': 'polite' });
  let recorded = null;
  const recordedInfo = h('span', { class: 'hint' });
  cloneFile.addEventListener('change', () => { recorded = null; recordedInfo.textContent = ''; cloneFile.required = true; });
  const cloneForm = h('form', { class: 'panel', onsubmit: async (e) => {
    e.preventDefault();
    const sampleFile = cloneFile.files[0] || recorded;
    if (!sampleFile || !cloneName.value.trim()) return;
    const job = await act(cloneButton, 'Uploading the sample…', cloneProblem, async () => {
      const asset = await upload(sampleFile);
      return api('POST', '/voices/clones', { name: cloneName.value.trim(), sample: { asset_id: asset.id } });
    });
    if (!job) return;
    fill(cloneProblem, h('p', { class: 'ok' }, `Cloning as ${job.id}: follow it on the `,
      h('a', { href: `#/jobs/${job.id}` }, 'Jobs page'), '; the voice appears here when it is done.'));
    cloneForm.reset();
    recorded = null;
    recordedInfo.textContent = '';
  } }, h('h3', {}, 'Clone a voice'), h('div', { class: 'row' }, field('Name', cloneName),
    field('Sample', cloneFile, '2 s to 5 min of one person speaking.')),
  recorder((file) => {
    recorded = file;
    cloneFile.value = '';
    cloneFile.required = false;
    recordedInfo.textContent = `Recorded ${Math.round(file.size / 1024)} KB: it is the sample.`;
  }, 'Or record the sample'), recordedInfo, cloneProblem, cloneButton);
  fill(main, h('h2', {}, 'Voices'), cloneForm, h('section', { class: 'panel' },
    h('div', { class: 'row' }, field('Search voices', search), field('Show', custom)), sample, problem,
    dataTable(['Name', 'Language', 'Gender', 'Engine', ''], body,
      (t) => ({ class: t === 'Engine' ? 'wide-only' : null })),
    h('div', { class: 'pager' }, prev, next, info)));
}

// ---- account -----------------------------------------------------------------------------

// ---- live: an avatar that answers as you type ----------------------------------------------

const LIVE_SIZES = [['', '512 × 512'], ['480p', '480p'], ['720p', '720p']];
// what a stream's server-sent events are called ('error' also names EventSource's own
// connection trouble: an event of the stream's carries data)
const LIVE_EVENTS = ['ready', 'utterance_started', 'word', 'utterance_ended', 'interrupted',
  'error', 'closed'];
const LIVE_ENDS = { deleted: 'ended', idle: 'ended: nobody spoke to it for a while',
  max_duration: 'ended: it reached its maximum duration',
  insufficient_credits: 'ended: the credits ran out', shutdown: 'ended: the service stopped' };

function livePage() {
  let chosen = null;
  let live = null;  // { stream, pc, resource, events } while a session is open
  const problem = h('div');
  const picker = avatarPicker({ pageSize: 8, onPick: (avatar) => { chosen = avatar; update(); } });
  const voice = select([['', 'Default voice']]);
  const size = select(LIVE_SIZES);
  const start = h('button', { type: 'button', class: 'primary', testid: 'live-start' }, 'Start');
  const stop = h('button', { type: 'button', class: 'danger', testid: 'live-stop', hidden: true },
    'End the session');
  const state = h('p', { class: 'muted', testid: 'live-state' });
  const video = h('video', { class: 'live', testid: 'live-video', autoplay: true,
    playsinline: true, 'aria-label': 'The avatar, live' });
  const text = h('textarea', { testid: 'live-text', maxlength: CONFIG.max_text_chars,
    placeholder: 'Say something…' });
  const speak = h('button', { type: 'submit', class: 'primary', testid: 'live-speak' }, 'Speak');
  const interrupt = h('button', { type: 'button', testid: 'live-interrupt' }, 'Interrupt');
  const said = h('p', { class: 'said', testid: 'live-said', 'aria-live': 'off' });
  const log = h('ol', { class: 'live-log', testid: 'live-events' });
  const talkProblem = h('div');
  const talk = h('form', { class: 'panel', hidden: true, onsubmit: (e) => {
    e.preventDefault();
    const words = text.value.trim();
    if (!words || !live) return;
    act(speak, 'Sending…', talkProblem, async () => {
      await api('POST', `/streams/${live.stream.id}/speak`, { text: words });
      text.value = '';
    });
  } },
  h('h2', {}, 'Talk'), field('Say', text, 'Press Speak (or Ctrl+Enter); the avatar says it at once, after what it is saying.'),
  h('div', { class: 'row' }, speak, interrupt), talkProblem, said, log);
  text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) talk.requestSubmit();
  });

  function update() {
    start.disabled = !chosen || !!live;
    stop.hidden = !live;
    talk.hidden = !live;
    const price = account.prices?.live_per_minute;
    if (live) {
      const { stream } = live;
      state.textContent = `Live: ${stream.width} × ${stream.height}, ${price} credits a started minute.`;
    } else {
      state.textContent = chosen ? `${chosen.name}: start a live session (${price} credits a started minute).`
        : 'Pick an avatar, then start.';
    }
  }

  function note(words) {
    log.prepend(h('li', {}, words));
    while (log.children.length > 8) log.lastElementChild.remove();
  }

  function onEvent(event) {
    if (event.type === 'utterance_started') { said.textContent = ''; note('Speaking…'); }
    else if (event.type === 'word') said.textContent = `${said.textContent} ${event.word}`.trim();
    else if (event.type === 'utterance_ended') note(event.reason === 'done' ? 'Done.' : `Stopped (${event.reason}).`);
    else if (event.type === 'interrupted') note('Interrupted.');
    else if (event.type === 'error') note(`Problem: ${event.reason}`);
    else if (event.type === 'closed') {
      const why = LIVE_ENDS[event.reason] || `ended (${event.reason})`;
      end(false).then(() => say(`The live session ${why}.`));
    }
  }

  /** Close the session's connection and events; ``remote``: end the stream too. */
  async function end(remote = true) {
    if (!live) return;
    const { stream, pc, resource, events } = live;
    live = null;
    events?.close();
    pc?.close();
    video.srcObject = null;
    update();
    const auth = { Authorization: `Bearer ${session.key}` };
    if (resource) fetch(resource, { method: 'DELETE', headers: auth, keepalive: true }).catch(() => {});
    if (remote) await api('DELETE', `/streams/${stream.id}`).catch(() => {});
    refreshAccount().catch(() => {});
  }

  start.onclick = () => act(start, 'Starting the live session (checking the face)…', problem, async () => {
    const stream = await api('POST', '/streams', { avatar_id: chosen.id, voice: voice.value || null,
      size: size.value || null });
    live = { stream };
    try {
      say('Connecting the video…');
      const { pc, media, resource } = await whep(stream.whep_url);
      Object.assign(live, { pc, resource });
      video.srcObject = media;
      video.play().catch(() => {});  // a browser that wants a click first shows its controls
      const events = new EventSource(stream.events_url);
      live.events = events;
      for (const type of LIVE_EVENTS) {
        events.addEventListener(type, (e) => { if (e.data) onEvent(JSON.parse(e.data)); });
      }
    } catch (err) {
      await end();
      throw err;
    }
    update();
    text.focus();
    refreshAccount().catch(() => {});
  });
  stop.onclick = () => act(stop, 'Ending the live session…', problem, () => end());
  interrupt.onclick = () => live && act(interrupt, 'Interrupting…', talkProblem,
    () => api('POST', `/streams/${live.stream.id}/interrupt`));
  // leaving the page (or the tab) ends the session: it is charged by the minute
  const leave = () => {
    if (live) fetch(`/api/v1/streams/${live.stream.id}`, { method: 'DELETE', keepalive: true,
      headers: { Authorization: `Bearer ${session.key}` } }).catch(() => {});
  };
  window.addEventListener('pagehide', leave);
  leavePage = () => { window.removeEventListener('pagehide', leave); end(); };

  api('GET', '/voices?page_size=100').then((list) => {
    append(voice, list.items.map((v) => h('option', { value: v.id }, `${v.name} (${v.language})`)));
  }).catch(() => {});
  update();
  fill(main, h('h2', {}, 'Live'),
    h('p', { class: 'muted' }, 'An avatar streamed as it speaks (WebRTC): pick one, start, then type and hear it answer.'),
    h('div', { class: 'cols' },
      h('section', { class: 'panel' }, h('h3', {}, 'Who'), picker.node,
        h('div', { class: 'row' }, field('Voice', voice), field('Size', size)), state, problem,
        h('div', { class: 'row' }, start, stop)),
      h('section', {}, video, talk)));
}

function accountPage() {
  const stats = h('div', { class: 'stats' });
  const ledger = h('tbody');
  const keys = h('tbody');
  const problem = h('div');
  const keyName = h('input', { type: 'text', maxlength: 200 });
  const shown = h('div', { 'aria-live': 'polite' });
  const makeKey = h('button', { type: 'submit', class: 'primary' }, 'Create key');

  async function load() {
    const data = await act(null, 'Loading the account…', problem, async () => {
      await refreshAccount();
      return Promise.all([api('GET', '/account/ledger?page_size=20'), api('GET', '/keys')]);
    });
    if (!data) return;
    const [entries, keyList] = data;
    fill(stats, [['Balance', account.balance], ['Held by jobs', account.held], ['Available', account.available],
      ['Spent', account.credits_spent]].map(([k, v]) => h('div', { class: 'stat' }, k, h('b', {}, String(v)))));
    fill(ledger, entries.items.map((e) => h('tr', {}, h('td', {}, when(e.created_at)), h('td', {}, e.kind),
      h('td', {}, String(e.amount)), h('td', {}, String(e.balance_after)), h('td', {}, e.job_id || ''),
      h('td', {}, e.note))));
    fill(keys, keyList.map((k) => h('tr', {}, h('td', {}, k.name || '(no name)'), h('td', {}, `${k.prefix}…`),
      h('td', {}, when(k.created_at)), h('td', {}, k.last_used_at ? when(k.last_used_at) : 'never'),
      h('td', {}, k.revoked_at ? `revoked ${when(k.revoked_at)}` : h('button', { type: 'button', class: 'danger',
        onclick: async (e) => {
          if (!confirm(`Revoke the key ${k.prefix}…? Whatever uses it stops working.`)) return;
          const done = await act(e.target, 'Revoking…', problem, () => api('DELETE', `/keys/${k.id}`));
          if (done !== undefined) load();
        } }, 'Revoke')))));
  }
  const form = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    const made = await act(makeKey, 'Creating a key…', problem, () => api('POST', '/keys', { name: keyName.value.trim() }));
    if (!made) return;
    fill(shown, h('p', { class: 'warn' }, 'Your new key, shown only now: copy it somewhere safe.'),
      h('p', { class: 'secret', testid: 'new-key' }, made.key));
    keyName.value = '';
    load();
  } }, h('div', { class: 'row' }, field('New key name', keyName), makeKey));
  const table = dataTable;
  fill(main, h('h2', {}, `Account: ${account.name}`), problem,
    h('section', { class: 'panel' }, h('h3', {}, 'Credits'), stats,
      h('p', { class: 'muted' }, `Prices: ${account.prices.video_per_second} credit per second of video, `
        + `${account.prices.tts_per_100_chars} per 100 characters of speech, ${account.prices.voice_clone} per voice clone.`)),
    h('div', { class: 'cols' },
      h('section', { class: 'panel' }, h('h3', {}, 'API keys'), form, shown,
        table(['Name', 'Key', 'Created', 'Last used', ''], keys)),
      h('section', { class: 'panel' }, h('h3', {}, 'Credit history'),
        table(['When', 'What', 'Amount', 'Balance', 'Job', 'Note'], ledger))),
    webhooksPanel(table), vendorPanel(table));
  load();
}

/** Client id + secret pairs for the Akool and Kling compatible APIs (the secret shown once). */
function vendorPanel(table) {
  const body = h('tbody');
  const problem = h('div', { 'aria-live': 'polite' });
  const vendor = select([['akool', 'Akool (clientId / clientSecret)'], ['kling', 'Kling (access key / secret key)']]);
  const name = h('input', { type: 'text', maxlength: 200 });
  const add = h('button', { type: 'submit', class: 'primary' }, 'Create credential');
  async function load() {
    const rows = await act(null, 'Loading vendor credentials…', problem, () => api('GET', '/vendor-credentials'));
    if (!rows) return;
    fill(body, rows.map((c) => h('tr', {}, h('td', {}, c.vendor), h('td', {}, c.name), h('td', {}, c.client_id),
      h('td', {}, when(c.created_at)), h('td', {}, c.revoked_at ? `revoked ${when(c.revoked_at)}`
        : h('button', { type: 'button', class: 'danger', onclick: async (e) => {
          if (!confirm(`Revoke the ${c.vendor} credential ${c.client_id}?`)) return;
          const done = await act(e.target, 'Revoking…', problem, () => api('DELETE', `/vendor-credentials/${c.id}`));
          if (done !== undefined) load();
        } }, 'Revoke')))));
  }
  const form = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    const made = await act(add, 'Creating the credential…', problem,
      () => api('POST', '/vendor-credentials', { vendor: vendor.value, name: name.value.trim() }));
    if (!made) return;
    fill(problem, h('p', { class: 'warn' }, 'The secret, shown only now:'),
      h('p', { class: 'secret' }, `${made.client_id} / ${made.client_secret}`));
    form.reset();
    load();
  } }, h('div', { class: 'row' }, field('Vendor API', vendor), field('Name', name), add));
  load();
  return h('section', { class: 'panel' }, h('h3', {}, 'Vendor API credentials'), form, problem,
    table(['Vendor', 'Name', 'Client id', 'Created', ''], body));
}

const EVENTS = ['job.queued', 'job.running', 'job.succeeded', 'job.failed', 'job.canceled', 'job.expired'];

/** Webhook endpoints: add, send a test, delete; each one's delivery log with a retry. */
function webhooksPanel(table) {
  const body = h('tbody');
  const problem = h('div');
  const log = h('div', { 'aria-live': 'polite' });
  const url = h('input', { type: 'url', required: true, placeholder: 'https://example.com/hooks' });
  const description = h('input', { type: 'text', maxlength: 500 });
  const boxes = EVENTS.map((e) => h('input', { type: 'checkbox', value: e }));
  const add = h('button', { type: 'submit', class: 'primary' }, 'Add webhook');

  async function deliveries(hook) {
    const list = await act(null, 'Loading deliveries…', problem,
      () => api('GET', `/webhooks/${hook.id}/deliveries?page_size=20`));
    if (!list) return;
    fill(log, h('h4', {}, `Deliveries to ${hook.url}`), list.items.length ? table(
      ['When', 'Event', 'Status', 'Attempts', 'Last answer', ''],
      h('tbody', {}, list.items.map((d) => {
        const last = d.attempts_log[d.attempts_log.length - 1] || {};
        return h('tr', {}, h('td', {}, when(d.created_at)), h('td', {}, d.event_type),
          h('td', {}, d.status), h('td', {}, String(d.attempts)),
          h('td', {}, last.status_code ? `HTTP ${last.status_code}` : last.error || ''),
          h('td', {}, d.status === 'pending' ? '' : h('button', { type: 'button', onclick: async (e) => {
            const done = await act(e.target, 'Sending again…', problem,
              () => api('POST', `/webhook-deliveries/${d.id}/retry`));
            if (done) deliveries(hook);
          } }, 'Retry')));
      }))) : h('p', { class: 'muted' }, 'No deliveries yet.'));
  }

  async function load() {
    const hooks = await act(null, 'Loading webhooks…', problem, () => api('GET', '/webhooks'));
    if (!hooks) return;
    fill(body, hooks.map((hook) => h('tr', { testid: 'webhook-row' }, h('td', {}, hook.url),
      h('td', {}, hook.description), h('td', {}, hook.events.length ? hook.events.join(', ') : 'all'),
      h('td', {}, h('div', { class: 'row' },
        h('button', { type: 'button', onclick: async (e) => {
          const sent = await act(e.target, 'Sending a test event…', problem,
            () => api('POST', `/webhooks/${hook.id}/test`));
          if (sent) deliveries(hook);
        } }, 'Send test'),
        h('button', { type: 'button', onclick: () => deliveries(hook) }, 'Deliveries'),
        h('button', { type: 'button', class: 'danger', onclick: async (e) => {
          if (!confirm(`Delete the webhook to ${hook.url}?`)) return;
          const done = await act(e.target, 'Deleting…', problem, () => api('DELETE', `/webhooks/${hook.id}`));
          if (done !== undefined) { log.replaceChildren(); load(); }
        } }, 'Delete'))))));
  }
  const form = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    const events = boxes.filter((b) => b.checked).map((b) => b.value);
    const made = await act(add, 'Adding the webhook…', problem,
      () => api('POST', '/webhooks', { url: url.value.trim(), description: description.value, events }));
    if (!made) return;
    fill(log, h('p', { class: 'warn' }, 'Its signing secret, to verify deliveries:'),
      h('p', { class: 'secret' }, made.secret));
    form.reset();
    load();
  } }, h('div', { class: 'row' }, field('Webhook URL', url), field('Description', description)),
  h('fieldset', {}, h('legend', {}, 'Events (none ticked: all)'),
    boxes.map((b) => h('label', {}, b, ` ${b.value}`))), add);
  load();
  return h('section', { class: 'panel' }, h('h3', {}, 'Webhooks'), form, problem,
    table(['URL', 'Description', 'Events', ''], body), log);
}

/** Samples of the Prometheus text format: {name, labels, value} (comments skipped). */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

// ---- admin -------------------------------------------------------------------------------

function adminPage() {
  const body = h('tbody');
  const problem = h('div');
  const health = h('div', { class: 'stats' });
  const name = h('input', { type: 'text', maxlength: 200, required: true });
  const creditsIn = h('input', { type: 'number', min: 0, value: '100' });
  const shown = h('div', { 'aria-live': 'polite' });
  const makeButton = h('button', { type: 'submit', class: 'primary' }, 'Create account');
  async function load() {
    const data = await act(null, 'Loading accounts…', problem, () => counted(async () => {
      // /health and /metrics need no key
      const r = await fetch('/health', { cache: 'no-store' });
      const m = CONFIG.metrics ? await fetch('/metrics', { cache: 'no-store' }) : null;
      return [await r.json(), await api('GET', '/accounts'), m?.ok ? parseMetrics(await m.text()) : null,
        await api('GET', '/admin/jobs?status=failed&page_size=10'), await api('GET', '/admin/workers')];
    }));
    if (!data) return;
    const [state, accounts, metrics, failures, workers] = data;
    fill(workersBody, workers.items.length ? workers.items.map((w) => h('tr', { testid: 'worker-row' },
      h('td', {}, w.hostname), h('td', {}, String(w.pid)),
      h('td', {}, h('span', { class: `badge ${w.state}` }, w.state)),
      h('td', {}, w.job_id ? `${KIND_NAMES[w.job_kind] || w.job_kind || ''} ${w.job_id}`.trim() : ''),
      h('td', {}, when(w.last_seen)), h('td', {}, `${w.jobs_done} / ${w.jobs_failed}`)))
      : h('tr', {}, h('td', { colspan: 6 }, 'No worker processes: start one with facecast worker (or facecast serve --workers 1).')));
    fill(workersNote, `Lost: no heartbeat for ${workers.lost_after_s} s (killed, or its machine is gone).`);
    fill(failed, failures.items.length ? failures.items.map((j) => h('tr', {},
      h('td', {}, when(j.finished_at || j.created_at)), h('td', {}, j.account_id),
      h('td', {}, `${KIND_NAMES[j.kind] || j.kind} ${j.id}`),
      h('td', {}, j.error ? `${j.error.message} [${j.error.code}]` : '')))
      : h('tr', {}, h('td', { colspan: 4 }, 'No failed jobs.')));
    fill(health, [['Queued jobs', state.queued], ['Running jobs', state.running], ['Version', state.version]]
      .map(([k, v]) => h('div', { class: 'stat' }, k, h('b', {}, String(v)))));
    if (metrics) showMetrics(metrics);
    fill(body, accounts.map((a) => {
      const amount = h('input', { type: 'number', value: '100', 'aria-label': `Credits for ${a.name}` });
      return h('tr', {}, h('td', {}, a.id), h('td', {}, a.name), h('td', {}, a.is_admin ? 'admin' : 'user'),
        h('td', {}, String(a.balance)), h('td', {}, h('div', { class: 'row' }, amount,
          h('button', { type: 'button', onclick: async (e) => {
            const done = await act(e.target, 'Granting…', problem,
              () => api('POST', `/accounts/${a.id}/credits`, { amount: Number(amount.value) }));
            if (done !== undefined) load();
          } }, 'Grant'))));
    }));
  }
  const form = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    const made = await act(makeButton, 'Creating the account…', problem,
      () => api('POST', '/accounts', { name: name.value.trim(), credits: Number(creditsIn.value) }));
    if (!made) return;
    fill(shown, h('p', { class: 'warn' }, `The key of ${made.name}, shown only now:`),
      h('p', { class: 'secret' }, made.api_key));
    form.reset();
    load();
  } }, h('div', { class: 'row' }, field('Name', name), field('Credits', creditsIn), makeButton));
  const figures = h('div');
  const failed = h('tbody');
  const workersBody = h('tbody');
  const workersNote = h('p', { class: 'muted' });
  /** Jobs by kind and status, render speed and webhook deliveries, from /metrics. */
  function showMetrics(samples) {
    const of = (name) => samples.filter((x) => x.name === name);
    const kinds = [...new Set(of('facecast_jobs').map((x) => x.labels.kind))].sort();
    const statuses = ['queued', 'running', 'succeeded', 'failed', 'canceled', 'expired'];
    const count = (kind, status) => of('facecast_jobs').find((x) => x.labels.kind === kind && x.labels.status === status)?.value || 0;
    const speed = (kind) => of('facecast_render_seconds_per_media_second').find((x) => x.labels.kind === kind)?.value;
    const jobsBody = h('tbody', {}, kinds.map((kind) => h('tr', {}, h('td', {}, KIND_NAMES[kind] || kind),
      statuses.map((st) => h('td', {}, String(count(kind, st)))),
      h('td', {}, speed(kind) != null ? `${speed(kind).toFixed(2)} s` : ''))));
    const sent = of('facecast_webhook_deliveries').map((x) => `${x.value} ${x.labels.status}`).join(', ');
    fill(figures, h('h4', {}, 'Jobs by kind'),
      dataTable(['Kind', ...statuses, 'Render s per media s'], jobsBody),
      h('p', { class: 'muted' }, `Webhook deliveries: ${sent || 'none'}. The same figures for monitoring tools: /metrics (Prometheus).`));
  }
  fill(main, h('h2', {}, 'Admin'), problem,
    h('section', { class: 'panel' }, h('h3', {}, 'Service'), health, figures),
    h('section', { class: 'panel' }, h('h3', {}, 'Workers'),
      dataTable(['Host', 'PID', 'State', 'Current job', 'Last seen', 'Done / failed'], workersBody), workersNote),
    h('section', { class: 'panel' }, h('h3', {}, 'Recent failures (every account)'),
      dataTable(['When', 'Account', 'Job', 'Error'], failed)),
    h('section', { class: 'panel' }, h('h3', {}, 'New account'), form, shown),
    h('section', { class: 'panel' }, h('h3', {}, 'Accounts'), dataTable(['Id', 'Name', 'Role', 'Balance', 'Grant credits'], body)));
  load();
}

// ---- start -------------------------------------------------------------------------------

window.addEventListener('hashchange', () => { if (account) route(); });

if (session.key) {
  say('Signing in…');
  api('GET', '/account').then((me) => { account = me; start(); }).catch((err) => {
    // a refused key has already sent the page back to sign in, with the reason
    if (!(err instanceof ApiError && err.status === 401)) signInPage(err.words || String(err));
  });
} else {
  signInPage();
}
