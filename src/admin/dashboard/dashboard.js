// Gatehouse dashboard: reads the live feed (GET ./events, server-sent events) and draws it; drain
// buttons and the configuration editor call the admin API. Plain JavaScript, no build step and no
// dependencies; all DOM text is set with textContent (feed values come from clients: paths, addresses).
// @ts-check

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const TOKEN_KEY = 'gatehouse-admin-token';

// ---- The admin token: from the URL fragment (#token=...) or the field, kept for this tab only.

{
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match !== null) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1] ?? ''));
    history.replaceState(null, '', location.pathname + location.search);
  }
}

/** @returns {Record<string, string>} */
function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('token'));
  if (input.value === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, input.value);
  input.value = '';
  restartFeed();
  void loadConfig();
});

/**
 * Calls the admin API; resolves with the status and the parsed JSON body (null when not JSON).
 * @param {string} method @param {string} path @param {string} [body] @param {Record<string, string>} [headers]
 */
async function api(method, path, body, headers = {}) {
  const res = await fetch(path, {
    method,
    headers: { ...authHeaders(), ...(body !== undefined ? { 'content-type': 'application/yaml' } : {}), ...headers },
    ...(body !== undefined ? { body } : {}),
  });
  /** @type {any} */
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (res.status === 401) $('auth').setAttribute('open', '');
  return { status: res.status, json };
}

// ---- The live feed. fetch() rather than EventSource: EventSource cannot send the Authorization header.

/** @type {AbortController | null} */
let feed = null;

function restartFeed() {
  feed?.abort();
  feed = new AbortController();
  void follow(feed.signal);
}

/** @param {AbortSignal} signal */
async function follow(signal) {
  while (!signal.aborted) {
    try {
      const res = await fetch('./events', { headers: authHeaders(), signal, cache: 'no-store' });
      if (res.status === 401) {
        // Until a token is given (the form starts the feed again).
        setLive(false, 'token needed');
        $('auth').setAttribute('open', '');
        return;
      }
      if (res.ok && res.body !== null) {
        setLive(true, 'live');
        await readEvents(res.body, signal);
      } else setLive(false, `HTTP ${res.status}`);
    } catch {
      if (signal.aborted) return;
    }
    setLive(false, 'reconnecting');
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Splits the stream into events (WHATWG HTML §9.2.6: blank-line separated, data: lines joined). @param {ReadableStream<Uint8Array>} body @param {AbortSignal} signal */
async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      let type = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length === 0) continue;
      if (type === 'message') render(JSON.parse(data.join('\n')));
      else if (type === 'feed-error') setLive(false, 'status failed');
    }
  }
}

/** @param {boolean} on @param {string} text */
function setLive(on, text) {
  const badge = $('live');
  badge.className = `badge ${on ? 'on' : 'off'}`;
  badge.textContent = text;
}

// ---- Drawing.

/** @param {string} tag @param {string} [text] @param {string} [className] */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className !== undefined) node.className = className;
  return node;
}

/** @param {number | null | undefined} ms */
const ms = (ms) => (ms == null ? '–' : ms < 10 ? `${ms.toFixed(1)} ms` : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);
/** @param {number | null | undefined} share */
const pct = (share) => (share == null ? '–' : `${(share * 100).toFixed(share > 0 && share < 0.1 ? 2 : 1)}%`);
/** @param {number} n */
const rate = (n) => (n >= 100 ? String(Math.round(n)) : n >= 10 ? n.toFixed(1) : n.toFixed(n === 0 ? 0 : 2));

/**
 * Draws a series (nulls are gaps drawn as zero) into a polyline of a 59×40 viewBox, scaled to `max`.
 * @param {string} id @param {(number | null)[]} values @param {number} max
 */
function spark(id, values, max) {
  const n = values.length;
  const points = values.map((v, i) => `${i + 60 - n},${(40 - ((v ?? 0) / (max || 1)) * 38 - 1).toFixed(2)}`);
  $(id).setAttribute('points', points.join(' '));
}

/** @param {(number | null)[]} values */
const maxOf = (values) => values.reduce((/** @type {number} */ m, v) => Math.max(m, v ?? 0), 0);

/** @type {{ time: number, servers: Map<string, number> } | null} */
let previous = null;

/** @param {any} snap */
function render(snap) {
  const t = snap.traffic;
  $('summary').textContent = [
    `up ${duration(snap.uptime_s)}`,
    ...(snap.listeners.length > 0 ? [snap.listeners.join(', ')] : []),
    ...(snap.workers ? [`${snap.workers.live}/${snap.workers.configured} workers`] : []),
  ].join(' · ');
  $('rps').textContent = rate(t.now.rps);
  const rpsMax = Math.max(1, maxOf(t.rps));
  spark('spark-rps', t.rps, rpsMax);
  $('scale-rps').textContent = `peak ${rate(maxOf(t.rps))}/s`;
  $('p50').textContent = ms(t.now.p50);
  $('p90').textContent = ms(t.now.p90);
  $('p99').textContent = ms(t.now.p99);
  $('latency-window').textContent = `(last ${t.now.window_s} s)`;
  const latencyMax = Math.max(1, maxOf(t.p99));
  for (const p of ['p50', 'p90', 'p99']) spark(`spark-${p}`, t[p], latencyMax);
  $('scale-latency').textContent = `p99 peak ${ms(maxOf(t.p99))}`;
  $('error-rate').textContent = pct(t.now.error_rate);
  spark('spark-errors', t.error_rate, Math.max(0.05, maxOf(t.error_rate)));
  $('scale-errors').textContent = `peak ${pct(maxOf(t.error_rate))}`;
  $('cache-ratio').textContent = snap.cache.stores === 0 ? 'no cache' : pct(snap.cache.recent_ratio ?? snap.cache.ratio);
  spark('spark-cache', snap.cache.series, 1);
  $('cache-since').textContent = snap.cache.stores === 0 ? '' : 'since this page opened';
  $('scale-cache').textContent = snap.cache.ratio == null ? '' : `${pct(snap.cache.ratio)} since start`;
  renderUpstreams(snap);
  renderErrors(snap.recent_errors);
  renderRefused(snap);
  renderCertificates(snap.certificates);
}

/** @param {number} s */
function duration(s) {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Rows kept between snapshots (by upstream and server), so that buttons survive the redraws. @type {Map<string, Record<string, HTMLElement>>} */
const rows = new Map();
let layout = '';

/** @param {any} snap */
function renderUpstreams(snap) {
  const now = Date.parse(snap.time);
  const seconds = previous === null ? 0 : (now - previous.time) / 1000;
  /** @type {Map<string, number>} */
  const counts = new Map();
  const shape = JSON.stringify(snap.upstreams.map((/** @type {any} */ u) => [u.name, u.servers.map((/** @type {any} */ s) => s.url)]));
  const box = $('upstreams');
  if (shape !== layout) {
    layout = shape;
    rows.clear();
    box.replaceChildren(...snap.upstreams.map(upstreamTable));
    if (snap.upstreams.length === 0) box.replaceChildren(el('p', 'no upstreams', 'muted'));
  }
  for (const u of snap.upstreams) {
    /** @type {number[]} */
    const rates = u.servers.map((/** @type {any} */ s) => {
      const key = `${u.name}\n${s.url}`;
      counts.set(key, s.requests);
      const before = previous?.servers.get(key);
      return before === undefined || seconds <= 0 ? 0 : Math.max(0, (s.requests - before) / seconds);
    });
    const total = rates.reduce((a, b) => a + b, 0);
    u.servers.forEach((/** @type {any} */ s, /** @type {number} */ i) => {
      const row = rows.get(`${u.name}\n${s.url}`);
      if (row === undefined) return;
      const drained = s.state === 'draining';
      row.state.textContent = drained ? (s.in_flight > 0 ? `draining (${s.in_flight})` : 'drained') : s.state;
      row.state.className = `state state-${s.state}`;
      row.row.dataset.state = s.state;
      row.bar.style.width = `${total > 0 ? Math.round((100 * (rates[i] ?? 0)) / total) : 0}%`;
      row.rate.textContent = `${rate(rates[i] ?? 0)}/s`;
      row.active.textContent = String(s.in_flight);
      row.requests.textContent = String(s.requests);
      row.failures.textContent = String(s.failures);
      row.latency.textContent = ms(s.ewma_ms);
      row.check.textContent = s.last_check === null ? '–' : `${s.last_check.ok ? 'ok' : 'failed'}${s.last_check.detail ? `: ${s.last_check.detail}` : ''}`;
      const button = /** @type {HTMLButtonElement} */ (row.button);
      if (button.dataset.busy !== 'true') button.textContent = drained ? 'Undrain' : 'Drain';
    });
  }
  previous = { time: now, servers: counts };
}

/** @param {any} u */
function upstreamTable(u) {
  const box = el('div', undefined, 'upstream');
  box.dataset.upstream = u.name;
  const title = el('h3', u.name);
  title.append(' ', el('span', `${u.balance ?? ''}`, 'muted'));
  const table = el('table');
  const head = el('tr');
  for (const name of ['server', 'state', 'load', 'active', 'requests', 'failures', 'latency', 'last check', '']) head.append(el('th', name));
  table.append(el('thead'), el('tbody'));
  /** @type {HTMLElement} */ (table.firstChild).append(head);
  for (const s of u.servers) {
    const row = el('tr');
    row.dataset.server = String(s.index);
    row.dataset.url = s.url;
    const cells = {
      row,
      state: el('span', s.state),
      bar: el('span'),
      rate: el('span'),
      active: el('td'),
      requests: el('td'),
      failures: el('td'),
      latency: el('td'),
      check: el('td'),
      button: el('button', 'Drain', 'drain'),
    };
    const load = el('td');
    const track = el('span', undefined, 'load');
    track.append(cells.bar);
    load.append(track, cells.rate);
    const stateCell = el('td');
    stateCell.append(cells.state);
    const action = el('td');
    action.append(cells.button);
    cells.button.addEventListener('click', () => void toggleDrain(u.name, s.index, /** @type {HTMLButtonElement} */ (cells.button), row));
    row.append(el('td', s.url + (s.backup ? ' (backup)' : '')), stateCell, load, cells.active, cells.requests, cells.failures, cells.latency, cells.check, action);
    /** @type {HTMLElement} */ (table.lastChild).append(row);
    rows.set(`${u.name}\n${s.url}`, cells);
  }
  box.append(title, table);
  return box;
}

/** @param {string} upstream @param {number} index @param {HTMLButtonElement} button @param {HTMLElement} row */
async function toggleDrain(upstream, index, button, row) {
  const drain = row.dataset.state !== 'draining';
  button.disabled = true;
  button.dataset.busy = 'true';
  try {
    const { status, json } = await api('POST', `./upstreams/${encodeURIComponent(upstream)}/servers/${index}/${drain ? 'drain' : 'undrain'}`);
    if (status === 200 && json !== null) {
      row.dataset.state = json.state;
      button.textContent = json.state === 'draining' ? 'Undrain' : 'Drain';
    } else button.textContent = `failed (${status})`;
  } finally {
    button.disabled = false;
    button.dataset.busy = 'false';
  }
}

/** @param {any[]} errors */
function renderErrors(errors) {
  const body = /** @type {HTMLElement} */ ($('errors').querySelector('tbody'));
  body.replaceChildren(
    ...errors.map((e) => {
      const row = el('tr');
      const path = el('td', `${e.method} ${e.path}`, 'path');
      path.title = e.path;
      row.append(el('td', new Date(e.time).toLocaleTimeString()), el('td', String(e.status)), path, el('td', e.route ?? '–'), el('td', e.upstream ?? '–'), el('td', e.server ?? '–'), el('td', e.code ?? '–'));
      return row;
    }),
  );
  $('errors-empty').hidden = errors.length > 0;
}

/** @param {any} snap */
function renderRefused(snap) {
  const body = /** @type {HTMLElement} */ ($('refused').querySelector('tbody'));
  body.replaceChildren(
    ...snap.refused.map((/** @type {any} */ r) => {
      const row = el('tr');
      row.append(el('td', r.client), el('td', String(r.denied)), el('td', String(r.limited)));
      return row;
    }),
  );
  $('refused-empty').hidden = snap.refused.length > 0;
  const p = snap.protection;
  $('protection').textContent = `since start: ${p.denied_requests ?? 0} denied, ${p.rate_limited ?? 0} rate limited, ${p.bans_active ?? 0} bans active`;
}

/** @param {any[]} certificates */
function renderCertificates(certificates) {
  const body = /** @type {HTMLElement} */ ($('certificates').querySelector('tbody'));
  body.replaceChildren(
    ...certificates.map((c) => {
      const row = el('tr');
      const days = el('td', String(c.days_left), c.days_left < 7 ? 'days-bad' : c.days_left < 21 ? 'days-warn' : undefined);
      row.append(el('td', c.names.join(', ')), el('td', c.listener), el('td', new Date(c.not_after).toISOString().slice(0, 10)), days);
      return row;
    }),
  );
  $('certificates-empty').hidden = certificates.length > 0;
}

// ---- The configuration editor: validate, diff, apply (If-Match the version loaded), history, roll back.

const text = /** @type {HTMLTextAreaElement} */ ($('config-text'));
/** @type {string | null} */
let loadedVersion = null;

/** @param {string} message @param {'ok' | 'bad' | ''} kind */
function say(message, kind = '') {
  const p = $('config-message');
  p.textContent = message;
  p.className = `message ${kind}`;
}

function clearOutput() {
  $('config-errors').replaceChildren();
  $('config-output').replaceChildren();
}

/** Lists a refused configuration's errors; a click selects the line in the editor. @param {any} json */
function showErrors(json) {
  const errors = Array.isArray(json?.errors) ? json.errors : [];
  say(errors.length > 0 ? `Invalid configuration (${errors.length} ${errors.length === 1 ? 'error' : 'errors'})` : `Refused: ${json?.message ?? json?.error ?? 'invalid configuration'}`, 'bad');
  $('config-errors').replaceChildren(
    ...errors.map((/** @type {any} */ e) => {
      const where = e.line ? `line ${e.line}${e.column ? `, col ${e.column}` : ''}` : '';
      const item = el('li', [where, e.path, e.message].filter((s) => s).join(' · '));
      if (e.line) item.addEventListener('click', () => selectLine(e.line));
      return item;
    }),
  );
}

/** @param {number} line */
function selectLine(line) {
  const lines = text.value.split('\n');
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  text.focus();
  text.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
}

async function loadConfig() {
  const { status, json } = await api('GET', './config');
  if (status !== 200 || json === null) {
    say(status === 404 ? 'This Gatehouse has no configuration API.' : `Cannot read the configuration (HTTP ${status}).`, 'bad');
    return;
  }
  text.value = json.source;
  loadedVersion = json.version == null ? null : String(json.version);
  $('config-version').textContent = loadedVersion === null ? '' : `version ${loadedVersion}`;
  clearOutput();
  say('');
  await loadHistory();
}

async function loadHistory() {
  const { status, json } = await api('GET', './config/history');
  const list = $('config-history');
  if (status !== 200 || json === null) {
    list.replaceChildren();
    return;
  }
  // Newest first, whatever order the API lists them in.
  const entries = [...json.entries].sort((/** @type {any} */ a, /** @type {any} */ b) => String(b.applied_at ?? '').localeCompare(String(a.applied_at ?? '')));
  list.replaceChildren(
    ...entries.map((/** @type {any} */ entry) => {
      const item = el('li');
      const version = String(entry.version);
      item.dataset.version = version;
      const current = version === String(json.current);
      item.append(el('strong', `v${version}`), ` ${entry.applied_at ? new Date(entry.applied_at).toLocaleString() : ''}${entry.by ? ` by ${entry.by}` : ''}${current ? ' (running)' : ''}`);
      if (Array.isArray(entry.changes) && entry.changes.length > 0) item.append(el('div', entry.changes.join('; '), 'muted'));
      const view = el('button', 'View');
      view.addEventListener('click', () => void viewVersion(version));
      item.append(view);
      if (!current) {
        const back = el('button', 'Roll back', 'rollback');
        back.addEventListener('click', () => void rollback(version, /** @type {HTMLButtonElement} */ (back)));
        item.append(back);
      }
      return item;
    }),
  );
}

/** @param {string} version */
async function viewVersion(version) {
  const { status, json } = await api('GET', `./config/history/${encodeURIComponent(version)}`);
  if (status !== 200 || json === null) return say(`Cannot read version ${version} (HTTP ${status}).`, 'bad');
  text.value = json.source;
  clearOutput();
  say(`Showing version ${version}: Apply to run it, or Reload for the running one.`);
}

/** Asks once more before rolling back (no modal dialogs: a second click confirms). @param {string} version @param {HTMLButtonElement} button */
async function rollback(version, button) {
  if (button.dataset.armed !== 'true') {
    button.dataset.armed = 'true';
    button.textContent = `Roll back to v${version}?`;
    return;
  }
  const { status, json } = await api('POST', `./config/rollback/${encodeURIComponent(version)}`);
  if (status === 200) {
    await loadConfig();
    say(`Rolled back to version ${version}; now running version ${json.version}.`, 'ok');
  } else if (status === 422) showErrors(json);
  else say(`Roll back failed: ${json?.error ?? `HTTP ${status}`}`, 'bad');
}

$('config-load').addEventListener('click', () => void loadConfig());

$('config-validate').addEventListener('click', async () => {
  clearOutput();
  const { status, json } = await api('POST', './config/validate', text.value);
  if (status === 200 && json?.valid) say('Valid.', 'ok');
  else showErrors(json ?? { message: `HTTP ${status}` });
});

$('config-diff').addEventListener('click', async () => {
  clearOutput();
  const { status, json } = await api('POST', './config/diff', text.value);
  if (status !== 200 || json === null) return showErrors(json ?? { message: `HTTP ${status}` });
  say(json.changes.length === 0 ? 'No changes.' : `Changes: ${json.changes.join('; ')}`, 'ok');
  $('config-output').replaceChildren(
    ...String(json.unified ?? '').split('\n').map((line) => {
      const kind = line.startsWith('@@') ? 'hunk' : line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : undefined;
      return el('span', `${line}\n`, kind);
    }),
  );
});

$('config-apply').addEventListener('click', async () => {
  clearOutput();
  const button = /** @type {HTMLButtonElement} */ ($('config-apply'));
  button.disabled = true;
  try {
    const { status, json } = await api('POST', './config/apply', text.value, loadedVersion === null ? {} : { 'if-match': loadedVersion });
    if (status === 200 && json?.applied) {
      const source = text.value;
      await loadConfig();
      text.value = source;
      const changes = Array.isArray(json.changes) && json.changes.length > 0 ? `: ${json.changes.join('; ')}` : '';
      say(`Applied version ${json.version}${changes}`, 'ok');
    } else if (status === 422) showErrors(json);
    else if (status === 409) say(`Not applied: ${json?.error ?? 'the configuration changed since it was loaded'} (Reload to start from the running one).`, 'bad');
    else say(`Not applied: ${json?.error ?? `HTTP ${status}`}`, 'bad');
  } finally {
    button.disabled = false;
  }
});

restartFeed();
void loadConfig();
