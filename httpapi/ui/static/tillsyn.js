// Night round view (tillsynsrunda): tonight's digital look-ins per unit and
// home in time order, the ones needing a physical visit on top, and a
// button to record a visit. Swedish first, English beside it. No inline
// script or style (the hub's CSP is default-src 'self').
'use strict';

const REFRESH_MS = 30000;
let csrf = '';
let zone; // the hub's time zone: times are shown as the unit lives them

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

function bi(sv, en) {
  // "Svenska / English" with the English part marked for screen readers.
  return el('span', {}, document.createTextNode(sv + ' '), el('span', { lang: 'en', text: '/ ' + en }));
}

function clock(iso) {
  if (!iso) return '';
  const opts = { hour: '2-digit', minute: '2-digit' };
  if (zone) opts.timeZone = zone;
  try {
    return new Date(iso).toLocaleTimeString('sv-SE', opts);
  } catch (_) { // an unknown zone name: the phone's own
    return new Date(iso).toLocaleTimeString('sv-SE', { hour: '2-digit', minute: '2-digit' });
  }
}

async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    if (csrf) opts.headers['X-CSRF-Token'] = csrf;
    opts.body = JSON.stringify(body || {});
  }
  try {
    const res = await fetch('/api/v1' + path, opts);
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    return { status: res.status, ok: res.ok, data };
  } catch (_) {
    return { status: 0, ok: false, data: null };
  }
}

function showError(sv, en) {
  const e = $('error');
  e.replaceChildren(bi(sv, en));
  e.hidden = false;
}

function entry(e, names, canVisit) {
  const who = (names && names[e.site + '/' + e.resident]) || e.resident;
  const li = el('li', { class: 'item', 'data-state': e.state, 'data-needs': String(!!e.needs_visit),
    'data-resident': e.resident, 'data-wall': e.wall });
  li.append(el('div', { class: 'row' },
    el('span', { class: 'time', text: e.wall }),
    el('span', { class: 'who', text: who }),
    e.room ? el('span', { class: 'room', text: 'rum ' + e.room }) : null));
  const words = el('p', { class: 'words' }, bi(e.sv, e.en));
  if (e.at) words.append(document.createTextNode(' · ' + clock(e.at)));
  li.append(words);
  if (e.needs_visit && e.visit_by) {
    li.append(el('p', { class: 'words' }, bi('Besök senast ' + clock(e.visit_by), 'visit by ' + clock(e.visit_by))));
  }
  if (e.reasons && e.reasons.length) {
    const ul = el('ul', { class: 'why' });
    for (const r of e.reasons) ul.append(el('li', { text: r }));
    li.append(ul);
  }
  if (e.note) li.append(el('p', { class: 'note', text: e.note }));
  if (e.evidence && e.evidence.length) {
    const d = el('details', {}, el('summary', { text: 'Givare / Sensors' }));
    for (const ev of e.evidence) {
      const seen = ev.last_seen ? clock(ev.last_seen) : '–';
      d.append(el('div', { text: `${ev.device} (${ev.role}): ${ev.said || '–'}, hörd / heard ${seen}${ev.usable ? '' : ' – ' + ev.why}` }));
    }
    li.append(d);
  }
  for (const v of e.visits || []) {
    li.append(el('p', { class: 'done' }, bi(`Besök ${clock(v.at)} av ${v.by}`, `visit ${clock(v.at)} by ${v.by}`)));
  }
  if (canVisit && e.state !== 'pending') {
    const b = el('button', { type: 'button', class: 'visit' }, bi('Besök gjort', 'Visit made'));
    b.addEventListener('click', async () => {
      b.disabled = true;
      const r = await api('POST', '/tillsyn/visits', { site: e.site, resident: e.resident });
      if (!r.ok) showError('Besöket kunde inte sparas', 'The visit could not be saved');
      await load();
    });
    li.append(b);
  }
  return li;
}

async function load() {
  const r = await api('GET', '/tillsyn');
  $('status').hidden = true;
  if (r.status === 401) { $('login').hidden = false; return; }
  if (r.status === 403) { showError('Din roll får inte se tillsynsrundan', 'Your role may not see the night round'); return; }
  if (!r.ok || !r.data) { showError('Ingen kontakt med larmservern', 'No contact with the alarm server'); return; }
  $('error').hidden = true;
  zone = r.data.zone || undefined;
  const canVisit = window.vakaRole === 'staff' || window.vakaRole === 'admin';
  const entries = r.data.entries || [];
  const names = r.data.names || {};
  const visits = entries.filter((e) => e.needs_visit);
  $('visits').hidden = visits.length === 0;
  $('visit-list').replaceChildren(...visits.map((e) => entry(e, names, canVisit)));
  // Per site and unit, in time order (the server sends time order).
  const groups = new Map();
  for (const e of entries) {
    if (e.needs_visit) continue;
    const k = e.site + (e.unit ? ' · ' + e.unit : '');
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(e);
  }
  const units = [];
  for (const [k, list] of groups) {
    units.push(el('section', { class: 'unit' }, el('h2', { text: k }),
      el('ol', { class: 'list' }, ...list.map((e) => entry(e, names, canVisit)))));
  }
  if (entries.length === 0) {
    units.push(el('p', { class: 'status' }, bi('Inga planerade tillsyn i natt', 'No look-ins planned tonight')));
  }
  $('units').replaceChildren(...units);
}

async function start() {
  const me = await api('GET', '/me');
  if (me.ok && me.data) {
    csrf = me.data.csrf || '';
    window.vakaRole = me.data.role || '';
  }
  await load();
  setInterval(load, REFRESH_MS);
}

start();
