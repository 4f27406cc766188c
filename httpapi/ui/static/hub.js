// Vaka staff app: which hub of a redundant group the phone is on, and
// following the active hub after a failover (docs/scale-out.md, "Staff
// app across a failover").
//
// Loaded after app.js (both classic scripts, so app.js's top-level names
// are visible here). On a single hub GET /api/v1/hub says role "single"
// and nothing of this shows. In a group the header shows "Hubb: hub-b" /
// "Hub: hub-b". When the stream breaks, app.js retries its own origin
// (same address behind a load balancer or a floating IP: the recommended
// set-up, where the session simply continues on the new active hub); once
// that has failed twice in a row, this asks the hubs of cluster.web_urls
// in order - first the one a standby here names as active - and moves the
// page to the first that says it is active. A different origin has no
// cookie of ours: the nurse logs in again there.
'use strict';
/* global STRINGS, API, t -- app.js's top-level names */
/* exported hubOnHello, hubFollow -- called by app.js */

Object.assign(STRINGS.sv, { hubLabel: 'Hubb: {node}', hubStandby: 'Hubb: {node} (reserv)', hubMoving: 'Byter till hubb {node} …' });
Object.assign(STRINGS.en, { hubLabel: 'Hub: {node}', hubStandby: 'Hub: {node} (standby)', hubMoving: 'Moving to hub {node} …' });

const hubState = { status: null, failures: 0, probing: false };
const HUB_PROBE_MS = 3000;

// hubFetch reads a hub's status; base '' is our own origin. A standby
// answers 503 with the same JSON, so the status code is not checked.
async function hubFetch(base) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), HUB_PROBE_MS);
  try {
    const opts = base ? { mode: 'cors', credentials: 'omit', cache: 'no-store', signal: ctl.signal }
      : { credentials: 'same-origin', cache: 'no-store', signal: ctl.signal };
    const res = await fetch(base + API + '/hub', opts);
    const st = await res.json();
    return st && typeof st.role === 'string' ? st : null;
  } catch (_) {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

async function hubRefresh() {
  const st = await hubFetch('');
  if (st) {
    // Keep the group's list if a standby answered without it.
    if (hubState.status && (!st.hubs || st.hubs.length === 0)) st.hubs = hubState.status.hubs;
    hubState.status = st;
  }
  hubRender();
  return st;
}

function hubRender() {
  const el = document.getElementById('hub-name');
  if (!el) return;
  const st = hubState.status;
  if (!st || st.role === 'single' || !st.node) { el.hidden = true; return; }
  el.hidden = false;
  el.dataset.role = st.role;
  el.textContent = t(st.role === 'standby' ? 'hubStandby' : 'hubLabel', { node: st.node });
}

// Called by app.js when the stream says hello: we are on a working hub.
function hubOnHello() {
  hubState.failures = 0;
  hubRefresh();
}

// Called by app.js when a reconnect attempt could not reach a working
// hub (no answer, or 5xx such as a standby's 503).
async function hubFollow() {
  hubState.failures++;
  const known = hubState.status;
  if (hubState.probing || hubState.failures < 2 || !known || known.role === 'single') return;
  hubState.probing = true;
  try {
    const here = await hubRefresh();
    if (here && here.role === 'active') return; // our own origin is back
    const order = [];
    if (here && here.active_url) order.push(here.active_url);
    for (const h of known.hubs || []) order.push(h.url);
    const tried = new Set([location.origin]);
    for (const url of order) {
      if (tried.has(url)) continue;
      tried.add(url);
      const st = await hubFetch(url);
      if (st && st.role === 'active') {
        const text = document.getElementById('conn-text');
        if (text) text.textContent = t('hubMoving', { node: st.node });
        location.assign(url + '/');
        return;
      }
    }
  } finally {
    hubState.probing = false;
  }
}

document.getElementById('lang-toggle').addEventListener('click', hubRender);
hubRefresh();
