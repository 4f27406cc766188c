// Vaka staff app: the night staff's live alarm list.
//
// Plain JS, no build step: the hub serves this file as is. The server sends
// a strict Content-Security-Policy (default-src 'self'), so there are no
// inline handlers or styles anywhere; everything is wired up here.
//
// Data flow: GET /api/v1/alarms gives the full picture, the event stream
// (/api/v1/stream) pushes every change. The list is refetched whenever the
// stream (re)connects, because events sent while we were away are lost.
// We never let the page look "connected" unless the stream says hello.
'use strict';
/* global hubOnHello, hubFollow -- hub.js, loaded after this file */

const API = '/api/v1';

// ---------------------------------------------------------------------------
// Strings. Swedish first; every visible word lives here.

const STRINGS = {
  sv: {
    appTitle: 'Vaka – larm',
    switchLang: 'English',
    starting: 'Startar…',
    loginHeading: 'Logga in',
    username: 'Användarnamn',
    password: 'Lösenord',
    login: 'Logga in',
    loggingIn: 'Loggar in…',
    logout: 'Logga ut',
    badLogin: 'Fel användarnamn eller lösenord.',
    lockedOut: 'För många misslyckade försök. Vänta en stund och försök igen.',
    loginFailed: 'Inloggningen misslyckades: {msg}',
    sessionEnded: 'Du är utloggad. Logga in igen för att få larm.',
    loggedOutBanner: 'Du är utloggad – den här telefonen får inga larm. Logga in igen.',
    connected: 'Ansluten',
    disconnected: 'Ingen kontakt',
    connLost: 'Ingen kontakt med larmservern – larm kan utebli',
    connRetry: 'Försöker återansluta …',
    soundLocked: 'Ljudet är av – larm hörs inte. Tryck här för att slå på ljud och vibration.',
    notifyDenied: 'Aviseringar är blockerade – en låst telefon larmar inte.',
    notifyDefault: 'Aviseringar är inte påslagna – en låst telefon larmar inte.',
    notifyUnsupported: 'Den här webbläsaren kan inte ta emot larm när telefonen är låst.',
    notifyEnable: 'Slå på aviseringar',
    fixAndroid: 'Android (Chrome): tryck på hänglåset eller ⋮ vid adressen → Webbplatsinställningar → Aviseringar → Tillåt. Ladda sedan om sidan.',
    fixIOS: 'iPhone: öppna sidan i Safari → Dela → Lägg till på hemskärmen (iOS 16.4 eller senare), öppna Vaka från hemskärmen och tillåt aviseringar. Redan tillagd: Inställningar → Notiser → Vaka → Tillåt notiser.',
    openAlarms: 'Öppna larm',
    othersWaiting: '{n} till väntar på att tas',
    othersOpen: '{n} öppna larm totalt',
    expand: 'Visa mer',
    takeoverMin: 'Visa listan',
    takeoverMax: 'Visa larmet',
    collapse: 'Visa mindre',
    noAlarms: 'Inga öppna larm',
    recentlyResolved: 'Nyligen avslutade',
    kind_call: 'Trygghetslarm',
    kind_fall: 'Fall',
    kind_wander: 'Vandring',
    kind_door: 'Dörr öppnad',
    kind_bed: 'Lämnat sängen',
    kind_motion: 'Rörelse i rummet',
    kind_geofence: 'Utanför hemområdet',
    kind_technical: 'Tekniskt larm',
    kind_hazard: 'Brand, gas eller vatten',
    kind_other: 'Larm',
    rule_call_button: 'Trygghetslarm',
    rule_fall: 'Fall',
    rule_door_at_night: 'Ytterdörr öppnad',
    rule_room_door_at_night: 'Rumsdörr öppnad, sängen tom',
    rule_door_open_too_long: 'Dörr öppen för länge',
    rule_bed_exit: 'Lämnat sängen',
    rule_geofence_exit: 'Utanför hemområdet',
    rule_inactivity: 'Ingen rörelse hemma',
    rule_device_silent: 'Enhet hörs inte',
    rule_battery_low: 'Lågt batteri',
    rule_tamper: 'Enhet öppnad eller flyttad',
    rule_gateway_offline: 'Basstation ur kontakt',
    rule_gateway_fault: 'Fel i basstationen',
    rule_hub_integrity: 'Fel i larmservern',
    rule_smoke: 'Rökvarnare',
    rule_water_leak: 'Vattenläcka',
    rule_gas: 'Gasläcka',
    rule_carbon_monoxide: 'Kolmonoxid',
    state_raised: 'Nytt – inte taget',
    state_accepted: 'Taget',
    state_presence: 'Hos den boende',
    state_resolved: 'Avslutat',
    room: 'rum {room}',
    resident: 'Boende {id}',
    gateway: 'Basstation {id}',
    groupCount: '{n} enheter berörs',
    deviceId: 'enhet {id}',
    accessKeyBox: 'Nyckelgömma: {v}',
    accessDoorCode: 'Portkod: {v}',
    accessNote: 'Att veta: {v}',
    accept: 'Jag tar det',
    presence: 'Hos den boende',
    resolve: 'Klar',
    takeOver: 'Ta över',
    takeOverAsk: '{who} har larmet. Vill du ta över det? {who} ser att du tog över.',
    takeOverYes: 'Ja, ta över',
    takenFrom: 'tog över från {who}',
    outcomeLegend: 'Vad hände?',
    outcome_real_need: 'Verkligt behov',
    outcome_false: 'Oavsiktligt larm',
    outcome_technical: 'Tekniskt fel',
    outcome_information: 'Informationsbehov',
    outcome_test: 'Test',
    note: 'Anteckning (valfri)',
    submitResolve: 'Klar – avsluta larmet',
    cancel: 'Avbryt',
    chooseOutcome: 'Välj vad som hände först.',
    justNow: 'nyss',
    agoSec: 'för {n} s sedan',
    agoMin: 'för {n} min sedan',
    agoHour: 'för {h} h {m} min sedan',
    agoDay: 'för {n} dygn sedan',
    raisedAgo: 'Larmade {ago}',
    lastAgo: 'senast {ago}',
    acceptedBy: 'Taget av {who} kl. {time}',
    presenceAt: 'Hos den boende kl. {time}',
    resolvedBy: 'Avslutat av {who} kl. {time}',
    you: 'dig',
    repeatsCall: 'tryckt {n} gånger',
    repeatsOther: 'utlöst {n} gånger',
    restored: 'Enheten återställd kl. {time}',
    restoredShort: 'Återställd',
    position: 'Position {lat}, {lon}',
    callback: 'Nummer att ringa upp: {n}',
    callbackAsked: 'Larmet ber om återuppringning: {n}',
    accuracy: '± {acc} m',
    history: 'Händelser',
    action_raise: 'Larmet kom',
    action_repeat: 'Larmade igen',
    action_restore: 'Återställt',
    action_accept: 'Taget',
    action_presence: 'Hos den boende',
    action_resolve: 'Avslutat',
    action_notify: 'Skickat till',
    action_delivered: 'Visat i telefonen',
    action_escalate: 'Skickat vidare till nästa nivå',
    action_reminder: 'Påminnelse',
    action_take_over: 'Övertaget',
    action_other: 'Händelse',
    by: 'av {who}',
    onPhoneOf: 'hos {who}',
    via_push: 'som avisering',
    via_app: 'i appen',
    via_webhook: 'till larmcentralen',
    atCentre: 'Hos larmcentralen sedan {time}',
    tier: 'nivå {n}',
    reason_raised: 'nytt larm',
    reason_not_accepted: 'inte taget ännu',
    reason_not_accepted_within: 'inte taget inom {d}',
    reason_not_delivered_within: 'inte visat i någon telefon inom {d}',
    system: 'systemet',
    alarmUnit: 'larmenheten (närvaroknappen)',
    deliveredTo: 'Visat i telefonen hos {who}',
    notDelivered: 'Ingen telefon har bekräftat larmet ännu',
    escalatedTo: 'Eskalerat till nivå {n}',
    trackLabel: 'Senaste positioner ({n})',
    role_staff: 'Personal',
    role_lead: 'Pilotledare',
    role_admin: 'Administratör',
    role_technician: 'Tekniker',
    err_already_accepted: 'Någon annan har redan tagit larmet.',
    err_owned_by_other: '{who} har larmet. Tryck Ta över om du ska ta det.',
    err_not_accepted: 'Larmet måste tas först.',
    err_resolved: 'Larmet är redan avslutat.',
    actionFailed: 'Det gick inte: {msg}',
    networkError: 'Ingen kontakt med servern. Försök igen.',
    resolvedByOther: 'Larmet avslutades av {who}.',
    newAlarm: 'Nytt larm: {what}',
    dty_0003: 'Personlarm', dty_0004: 'Fast larmknapp', dty_0005: 'Fallsensor', dty_0012: 'Sängvakt',
    dty_0013: 'Sensormatta', dty_0014: 'Dörrsensor', dty_0015: 'Vandringssensor', dty_0018: 'Närvarosensor',
    dty_0032: 'Förbindelsevakt', dty_0044: 'Stolsvakt', dty_0051: 'Spårsändare',
    stc_0009: 'Automatiskt larm', stc_0010: 'Manuellt larm', stc_0016: 'Lågt batteri',
    stc_0023: 'IP-förbindelse bruten', stc_0073: 'Ur funktion (offline)', stc_0077: 'Öppen för länge',
    stc_0088: 'Personal på plats', stc_0094: 'Återställd', stc_0110: 'Behöver hjälp',
    stc_0111: 'Insats klar', stc_0117: 'Ligger i sängen', stc_0119: 'Rörelse',
    stc_0123: 'Radiotest saknas',
    lco_019: 'Geostaket', lco_035: 'GPS-position', lco_039: 'Ytterdörr',
  },
  en: {
    appTitle: 'Vaka – alarms',
    switchLang: 'Svenska',
    starting: 'Starting…',
    loginHeading: 'Log in',
    username: 'Username',
    password: 'Password',
    login: 'Log in',
    loggingIn: 'Logging in…',
    logout: 'Log out',
    badLogin: 'Wrong username or password.',
    lockedOut: 'Too many failed attempts. Wait a while and try again.',
    loginFailed: 'Login failed: {msg}',
    sessionEnded: 'You are logged out. Log in again to receive alarms.',
    loggedOutBanner: 'You are logged out – this phone receives no alarms. Log in again.',
    connected: 'Connected',
    disconnected: 'No connection',
    connLost: 'No contact with the alarm server – alarms may be missed',
    connRetry: 'Trying to reconnect …',
    soundLocked: 'Sound is off – alarms will not be heard. Tap here to turn on sound and vibration.',
    notifyDenied: 'Notifications are blocked – a locked phone will not alert.',
    notifyDefault: 'Notifications are not turned on – a locked phone will not alert.',
    notifyUnsupported: 'This browser cannot receive alarms while the phone is locked.',
    notifyEnable: 'Turn on notifications',
    fixAndroid: 'Android (Chrome): tap the padlock or ⋮ by the address → Site settings → Notifications → Allow. Then reload the page.',
    fixIOS: 'iPhone: open the page in Safari → Share → Add to Home Screen (iOS 16.4 or later), open Vaka from the home screen and allow notifications. Already added: Settings → Notifications → Vaka → Allow Notifications.',
    openAlarms: 'Open alarms',
    othersWaiting: '{n} more waiting to be taken',
    othersOpen: '{n} open alarms in all',
    expand: 'Show more',
    takeoverMin: 'Show the list',
    takeoverMax: 'Show the alarm',
    collapse: 'Show less',
    noAlarms: 'No open alarms',
    recentlyResolved: 'Recently resolved',
    kind_call: 'Call button',
    kind_fall: 'Fall',
    kind_wander: 'Wandering',
    kind_door: 'Door opened',
    kind_bed: 'Out of bed',
    kind_motion: 'Movement in the room',
    kind_geofence: 'Outside the home area',
    kind_technical: 'Technical alarm',
    kind_hazard: 'Smoke, gas or water',
    kind_other: 'Alarm',
    rule_call_button: 'Call button',
    rule_fall: 'Fall',
    rule_door_at_night: 'Exit door opened',
    rule_room_door_at_night: 'Room door opened, bed empty',
    rule_door_open_too_long: 'Door open too long',
    rule_bed_exit: 'Out of bed',
    rule_geofence_exit: 'Outside the home area',
    rule_inactivity: 'No movement at home',
    rule_device_silent: 'Device not heard',
    rule_battery_low: 'Battery low',
    rule_tamper: 'Device opened or moved',
    rule_gateway_offline: 'Base station out of contact',
    rule_gateway_fault: 'Base station fault',
    rule_hub_integrity: 'Alarm server fault',
    rule_smoke: 'Smoke alarm',
    rule_water_leak: 'Water leak',
    rule_gas: 'Gas leak',
    rule_carbon_monoxide: 'Carbon monoxide',
    state_raised: 'New – not taken',
    state_accepted: 'Taken',
    state_presence: 'With the resident',
    state_resolved: 'Resolved',
    room: 'room {room}',
    resident: 'Resident {id}',
    gateway: 'Base station {id}',
    groupCount: '{n} devices affected',
    deviceId: 'device {id}',
    accessKeyBox: 'Key box: {v}',
    accessDoorCode: 'Door code: {v}',
    accessNote: 'Good to know: {v}',
    accept: 'I’ll take it',
    presence: 'With the resident',
    resolve: 'Done',
    takeOver: 'Take over',
    takeOverAsk: '{who} has this alarm. Take it over? {who} will see that you did.',
    takeOverYes: 'Yes, take over',
    takenFrom: 'took over from {who}',
    outcomeLegend: 'What happened?',
    outcome_real_need: 'Real need',
    outcome_false: 'Unintended alarm',
    outcome_technical: 'Technical fault',
    outcome_information: 'Information request',
    outcome_test: 'Test',
    note: 'Note (optional)',
    submitResolve: 'Done – close the alarm',
    cancel: 'Cancel',
    chooseOutcome: 'Choose what happened first.',
    justNow: 'just now',
    agoSec: '{n} s ago',
    raisedAgo: 'Alarmed {ago}',
    lastAgo: 'last {ago}',
    agoMin: '{n} min ago',
    agoHour: '{h} h {m} min ago',
    agoDay: '{n} days ago',
    acceptedBy: 'Taken by {who} at {time}',
    presenceAt: 'With the resident at {time}',
    resolvedBy: 'Resolved by {who} at {time}',
    you: 'you',
    repeatsCall: 'pressed {n} times',
    repeatsOther: 'triggered {n} times',
    restored: 'Device restored at {time}',
    restoredShort: 'Restored',
    position: 'Position {lat}, {lon}',
    callback: 'Number to call back: {n}',
    callbackAsked: 'The alarm unit asks to be called back: {n}',
    accuracy: '± {acc} m',
    history: 'History',
    action_raise: 'Alarm came in',
    action_repeat: 'Alarmed again',
    action_restore: 'Restored',
    action_accept: 'Taken',
    action_presence: 'With the resident',
    action_resolve: 'Resolved',
    action_notify: 'Sent to',
    action_delivered: 'Shown on the phone',
    action_escalate: 'Passed on to the next tier',
    action_reminder: 'Reminder',
    action_take_over: 'Taken over',
    action_other: 'Event',
    by: 'by {who}',
    onPhoneOf: 'of {who}',
    via_push: 'as a notification',
    via_app: 'in the app',
    via_webhook: 'to the alarm centre',
    atCentre: 'With the alarm centre since {time}',
    tier: 'tier {n}',
    reason_raised: 'new alarm',
    reason_not_accepted: 'not taken yet',
    reason_not_accepted_within: 'not taken within {d}',
    reason_not_delivered_within: 'not shown on any phone within {d}',
    system: 'the system',
    alarmUnit: 'the alarm unit (presence key)',
    deliveredTo: 'Shown on the phone of {who}',
    notDelivered: 'No phone has confirmed the alarm yet',
    escalatedTo: 'Escalated to tier {n}',
    trackLabel: 'Recent positions ({n})',
    role_staff: 'Staff',
    role_lead: 'Pilot lead',
    role_admin: 'Administrator',
    role_technician: 'Technician',
    err_already_accepted: 'Someone else has already taken this alarm.',
    err_owned_by_other: '{who} has this alarm. Tap Take over if you are taking it.',
    err_not_accepted: 'The alarm must be taken first.',
    err_resolved: 'The alarm is already resolved.',
    actionFailed: 'That did not work: {msg}',
    networkError: 'No contact with the server. Try again.',
    resolvedByOther: 'The alarm was resolved by {who}.',
    newAlarm: 'New alarm: {what}',
    dty_0003: 'Personal trigger', dty_0004: 'Fixed trigger', dty_0005: 'Fall detector', dty_0012: 'Bed monitor',
    dty_0013: 'Mat sensor', dty_0014: 'Door sensor', dty_0015: 'Wandering sensor', dty_0018: 'Occupancy detector',
    dty_0032: 'Link monitor', dty_0044: 'Chair monitor', dty_0051: 'Tracking device',
    stc_0009: 'Automatic alarm', stc_0010: 'Manual alarm', stc_0016: 'Battery low',
    stc_0023: 'IP connection failure', stc_0073: 'Offline', stc_0077: 'Open too long',
    stc_0088: 'Staff present', stc_0094: 'Restored', stc_0110: 'Assistance',
    stc_0111: 'Intervention complete', stc_0117: 'Lying in bed', stc_0119: 'Movement',
    stc_0123: 'Radio test missing',
    lco_019: 'Geofence', lco_035: 'GPS position', lco_039: 'Front door',
  },
};

const OUTCOMES = ['real_need', 'false', 'technical', 'information', 'test'];

// Resolved alarms kept on screen; the server decides what "recent" means,
// this only stops a long night of stream events from growing without bound.
const MAX_RESOLVED = 30;
// The TEC target is an answer within 60 s; unaccepted alarms older than
// this are marked overdue and the phone reminds again every REMIND_MS.
const OVERDUE_MS = 60 * 1000;
const REMIND_MS = 60 * 1000;
// An unaccepted care alarm sounds and vibrates again this often until
// someone takes it (issue 15: the new alarm can't be missed).
const ALERT_REPEAT_MS = 15 * 1000;
// How often the list is refetched as a check that the server is reachable
// (the stream's keep-alives are SSE comments, invisible to JavaScript).
const WATCHDOG_MS = 20 * 1000;
const REQUEST_TIMEOUT_MS = 10 * 1000;

// ---------------------------------------------------------------------------
// State.

const state = {
  lang: loadLang(),
  me: null,            // {user, name, role, csrf}
  csrf: '',
  connected: false,
  alarms: new Map(),   // id → Alarm JSON
  receivedAt: new Map(), // id → Date.now() when we last stored it
  alerted: new Map(),  // id → repeats count we last beeped for
  cards: new Map(),    // id → {el, key}: rendered card, rebuilt only when key changes
  busy: new Set(),     // alarm ids with a request in flight
  resolvingId: null,   // the one alarm whose "Klar" form is open
  drafts: new Map(),   // id → {outcome, note, hint} so a re-render keeps what was typed
  clockSkew: 0,        // server time − local time, ms (ages must use server time)
  shown: new Set(),    // "id/tier" whose app receipt this page has sent
  names: {},           // login → display name (from /me user_names)
  expanded: new Set(), // ids of collapsed-kind cards the user opened
  confirmTakeOver: null, // the alarm whose "Ta över?" question is open
  takeoverId: null,    // the alarm now shown in the sticky takeover slot
  takeoverMin: null,   // the takeover alarm the user shrank to one line (to reach the list)
  loggedOut: false,    // the session ended without the user asking
};

let es = null;            // EventSource
let reconnectTimer = 0;
let reconnectPending = false;
let reconnectDelay = 1000;
let disconnectedSince = 0; // when the stream was last lost (0 = connected)
let lastStreamAt = 0;     // last event of any kind on the stream
let pingSeen = false;     // the server sends named "ping" events (optional)
let watchdogTimer = 0;
let refreshSeq = 0;
let lastAlertAt = 0;
let lastReminderAt = 0;
let toastTimer = 0;

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ---------------------------------------------------------------------------
// i18n helpers.

function loadLang() {
  try {
    const l = localStorage.getItem('vaka.lang');
    if (l && STRINGS[l]) return l;
  } catch (_) { /* storage may be blocked; Swedish it is */ }
  return 'sv';
}

function t(key, vars) {
  let s = STRINGS[state.lang][key];
  if (s === undefined) s = STRINGS.sv[key];
  if (s === undefined) return key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
  return s;
}

function has(key) { return STRINGS[state.lang][key] !== undefined; }

function locale() { return state.lang === 'sv' ? 'sv-SE' : 'en-GB'; }

// Static markup carries data-i18n="key" (text) and data-i18n-attr="attr:key".
function applyStaticStrings() {
  document.documentElement.lang = state.lang;
  for (const el of $$('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of $$('[data-i18n-attr]')) {
    const [attr, key] = el.dataset.i18nAttr.split(':');
    el.setAttribute(attr, t(key));
  }
  const toggle = $('#lang-toggle');
  toggle.textContent = t('switchLang');
  toggle.lang = state.lang === 'sv' ? 'en' : 'sv';
  toggle.dataset.lang = state.lang;
}

function setLang(lang) {
  state.lang = lang;
  try { localStorage.setItem('vaka.lang', lang); } catch (_) { /* not remembered, still works */ }
  applyStaticStrings();
  renderHeader();
  setConnected(state.connected);
  if (state.me) showNotifyBanner();
  state.cards.clear(); // every card text changes
  render();
}

// ---------------------------------------------------------------------------
// HTTP.

// api returns {status, ok, data}; status 0 means the network failed. It
// never throws, so callers handle all outcomes in one place.
async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    if (state.csrf) opts.headers['X-CSRF-Token'] = state.csrf;
    opts.body = JSON.stringify(body || {});
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
  opts.signal = ctl.signal;
  try {
    const res = await fetch(API + path, opts);
    noteServerTime(res);
    let data = null;
    try { data = await res.json(); } catch (_) { /* empty or not JSON */ }
    return { status: res.status, ok: res.ok, data };
  } catch (_) {
    return { status: 0, ok: false, data: null };
  } finally {
    clearTimeout(timer);
  }
}

// Phones' clocks drift; "3 min sedan" must be measured on the server's clock.
function noteServerTime(res) {
  const d = Date.parse(res.headers.get('Date') || '');
  if (!isNaN(d)) state.clockSkew = d - Date.now();
}

function now() { return Date.now() + state.clockSkew; }

// Server errors are English sentences from Go; translate the ones staff meet.
function errorText(r) {
  const msg = (r.data && r.data.error) || '';
  if (r.data && r.data.code === 'owned_by_other') return t('err_owned_by_other', { who: r.data.accepted_by_name || person(r.data.accepted_by) });
  if (/already accepted/i.test(msg)) return t('err_already_accepted');
  if (/must be accepted/i.test(msg)) return t('err_not_accepted');
  if (/already resolved/i.test(msg)) return t('err_resolved');
  if (r.status === 0) return t('networkError');
  return t('actionFailed', { msg: msg || 'HTTP ' + r.status });
}

// ---------------------------------------------------------------------------
// Session.

async function checkSession() {
  const r = await api('GET', '/me');
  $('#boot').hidden = true;
  if (r.ok && r.data) return startSession(r.data);
  if (r.status === 401) {
    // This phone was logged in and did not log out: its session ended
    // (expired or revoked) while the page was closed. Say so, loudly.
    if (remembered()) { state.loggedOut = true; return showLogin(t('sessionEnded')); }
    return showLogin('');
  }
  // Server unreachable: say so loudly and keep trying.
  showConnBanner(true);
  setTimeout(checkSession, 5000);
}

function showLogin(message) {
  $('#app').hidden = true;
  $('#user-box').hidden = true;
  $('#login').hidden = false;
  $('#notify-banner').hidden = true;
  $('#logged-out-banner').hidden = !state.loggedOut;
  showConnBanner(false);
  const err = $('#login-error');
  err.textContent = message;
  err.hidden = !message;
  updateTitle();
  $('#username').focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  const button = $('#login-button');
  const err = $('#login-error');
  const username = $('#username').value.trim();
  const password = $('#password').value;
  if (!username || !password) return;
  button.disabled = true;
  button.textContent = t('loggingIn');
  const r = await api('POST', '/login', { username, password });
  button.disabled = false;
  button.textContent = t('login');
  if (r.ok && r.data) {
    $('#password').value = '';
    err.hidden = true;
    // Back to the page asked for before the login (a lead opening /pilot).
    const next = safeNext();
    if (next) { location.assign(next); return; }
    // The tap on "Logga in" is the gesture browsers need before sound.
    unlockAudio();
    beep(false);
    return startSession(r.data);
  }
  if (r.status === 401) err.textContent = t('badLogin');
  else if (r.status === 429) err.textContent = t('lockedOut');
  else if (r.status === 0) err.textContent = t('networkError');
  else err.textContent = t('loginFailed', { msg: (r.data && r.data.error) || 'HTTP ' + r.status });
  err.hidden = false;
  $('#password').select();
}

// safeNext is the ?next= page to return to after login: only a path on
// this site ("/pilot"), never another origin ("//evil", "https://…",
// "/\\evil"), and not the app itself.
function safeNext() {
  let next = '';
  try { next = new URLSearchParams(location.search).get('next') || ''; } catch (_) { return ''; }
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (!/^\/[^/\\]/.test(next) || /[\u0000-\u001f]/.test(next)) return '';
  try {
    const u = new URL(next, location.origin);
    if (u.origin !== location.origin || u.pathname === '/') return '';
    return u.pathname + u.search + u.hash;
  } catch (_) { return ''; }
}

// remembered reports whether this browser was logged in and did not log
// out (only a flag, never a token: the session cookie is HttpOnly).
function remembered() {
  try { return localStorage.getItem('vaka.loggedIn') === '1'; } catch (_) { return false; }
}

function remember(on) {
  try { if (on) localStorage.setItem('vaka.loggedIn', '1'); else localStorage.removeItem('vaka.loggedIn'); } catch (_) { /* private mode */ }
}

function startSession(me) {
  remember(true);
  state.me = me;
  state.csrf = me.csrf || '';
  state.names = me.user_names || {};
  state.loggedOut = false;
  $('#logged-out-banner').hidden = true;
  $('#login').hidden = true;
  $('#app').hidden = false;
  renderHeader();
  updateSoundHint();
  setConnected(false);
  connectStream();
  refresh();
  setupPush();
  clearInterval(watchdogTimer);
  watchdogTimer = setInterval(watchdog, WATCHDOG_MS);
}

function endSession(message) {
  state.me = null;
  state.csrf = '';
  closeStream();
  clearTimeout(reconnectTimer);
  reconnectPending = false;
  reconnectDelay = 1000;
  clearInterval(watchdogTimer);
  state.alarms.clear();
  state.receivedAt.clear();
  state.alerted.clear();
  state.cards.clear();
  state.busy.clear();
  state.shown.clear();
  state.drafts.clear();
  state.expanded.clear();
  state.resolvingId = null;
  state.confirmTakeOver = null;
  state.takeoverId = null;
  // Ended without the user asking (revoked, expired, restart without the
  // session): say so loudly, with sound, and keep reminding.
  state.loggedOut = !!message;
  if (state.loggedOut) { lastReminderAt = Date.now(); beep(true); vibrate(true); }
  $('#takeover-slot').replaceChildren();
  $('#takeover').hidden = true;
  $('#open-alarms').replaceChildren();
  $('#resolved-alarms').replaceChildren();
  setConnected(false);
  showLogin(message);
}

async function onLogout() {
  remember(false);
  await api('POST', '/logout', {});
  endSession('');
}

// A 403 means our CSRF token is stale (e.g. a new login in another tab).
async function refreshCsrf() {
  const r = await api('GET', '/me');
  if (r.ok && r.data && r.data.csrf) { state.csrf = r.data.csrf; return true; }
  if (r.status === 401) endSession(t('sessionEnded'));
  return false;
}

// mayAnswer mirrors the server's access policy (docs/roles.md): staff and
// admins answer every alarm, technicians technical ones, pilot leads none.
// The server refuses the rest anyway; this only hides buttons that would fail.
function mayAnswer(a) {
  const role = state.me && state.me.role;
  if (role === 'staff' || role === 'admin') return true;
  return role === 'technician' && a.kind === 'technical';
}

function renderHeader() {
  if (!state.me) return;
  $('#user-box').hidden = false;
  $('#user-name').textContent = state.me.name || state.me.user;
  if (state.me.name) state.names[state.me.user] = state.me.name;
  $('#user-role').textContent = has('role_' + state.me.role) ? t('role_' + state.me.role) : state.me.role;
}

// ---------------------------------------------------------------------------
// Live stream and connection state.

function connectStream() {
  closeStream();
  const src = new EventSource(API + '/stream');
  es = src;
  src.addEventListener('hello', () => {
    if (es !== src) return;
    lastStreamAt = Date.now();
    reconnectDelay = 1000;
    setConnected(true);
    refresh(); // catch up on whatever happened while we were not listening
    if (typeof hubOnHello === 'function') hubOnHello(); // hub.js: which hub of a group
  });
  src.addEventListener('alarm', (e) => {
    if (es !== src) return;
    lastStreamAt = Date.now();
    let a;
    try { a = JSON.parse(e.data); } catch (_) { return; }
    applyAlarm(a);
    render();
    confirmShown();
  });
  // The session was revoked or expired: the server ends the stream.
  src.addEventListener('logout', () => {
    if (es !== src) return;
    endSession(t('sessionEnded'));
  });
  src.addEventListener('skipped', () => onTechnicalSkipped(src)); // end of file
  // Not sent by the server today; if it starts sending named pings, the
  // watchdog below also catches a silently dead (half-open) stream.
  src.addEventListener('ping', () => { lastStreamAt = Date.now(); pingSeen = true; });
  src.addEventListener('error', () => {
    if (es !== src) return;
    setConnected(false);
    // CONNECTING: the browser retries by itself. CLOSED: it gave up (e.g.
    // a 401 or 5xx answer), so we check the session and retry ourselves.
    if (src.readyState === EventSource.CLOSED) scheduleReconnect();
  });
}

function closeStream() {
  if (es) { es.close(); es = null; }
}

// Reconnect with backoff (1 s doubling to 30 s). Asking /me first tells a
// dead session (log in again) from a dead network (keep trying).
function scheduleReconnect() {
  closeStream();
  if (reconnectPending) return;
  reconnectPending = true;
  const delay = reconnectDelay;
  reconnectDelay = Math.min(Math.max(reconnectDelay * 2, 1000), 30000);
  reconnectTimer = setTimeout(async () => {
    reconnectPending = false;
    if (!state.me) return;
    const r = await api('GET', '/me');
    if (r.status === 401) return endSession(t('sessionEnded'));
    if (r.ok && r.data && r.data.csrf) state.csrf = r.data.csrf;
    // hub.js: no working hub here; in a redundant group, try the others.
    if ((r.status === 0 || r.status >= 500) && typeof hubFollow === 'function') hubFollow();
    if (state.me && !es) connectStream();
  }, delay);
}

function reconnectNow() {
  clearTimeout(reconnectTimer);
  reconnectPending = false;
  reconnectDelay = 0;
  scheduleReconnect();
}

// Runs every WATCHDOG_MS and when the phone wakes up. EventSource can sit in
// OPEN on a dead connection (phone changed network, NAT dropped it), so a
// failing fetch overrules what the stream claims.
async function watchdog() {
  if (!state.me) return;
  if (navigator.onLine === false) setConnected(false);
  if (pingSeen && Date.now() - lastStreamAt > 3 * WATCHDOG_MS) {
    setConnected(false);
    scheduleReconnect();
    return;
  }
  const r = await refresh();
  if (r && r.status === 0 && state.me) {
    setConnected(false);
    // OPEN while the server is unreachable: a half-open stream. Replace it.
    // (CONNECTING is the browser retrying; CLOSED already has a retry queued.)
    if (es && es.readyState === EventSource.OPEN) scheduleReconnect();
  }
}

function setConnected(on) {
  state.connected = on;
  const conn = $('#conn');
  conn.dataset.connected = on ? 'true' : 'false';
  $('#conn-text').textContent = on ? t('connected') : t('disconnected');
  showConnBanner(!on && !!state.me);
  if (on) disconnectedSince = 0;
  else if (!disconnectedSince) disconnectedSince = Date.now();
}

function showConnBanner(show) {
  $('#conn-banner').hidden = !show;
  document.documentElement.classList.toggle('disconnected', show);
}

// ---------------------------------------------------------------------------
// Alarm data.

function time(iso) {
  const v = Date.parse(iso || '');
  // Go's zero time (year 1) means "not set".
  return isNaN(v) || v < 946684800000 ? 0 : v;
}

function lastSeq(a) {
  const h = a.history || [];
  return h.length ? (h[h.length - 1].seq || h.length) : 0;
}

// Stream events and action responses can arrive out of order; keep the newest.
function isOlder(a, b) {
  const ta = time(a.updated_at), tb = time(b.updated_at);
  if (ta !== tb) return ta < tb;
  return lastSeq(a) < lastSeq(b);
}

function applyAlarm(a) {
  if (!a || !a.id) return;
  const old = state.alarms.get(a.id);
  if (old && isOlder(a, old)) return;
  state.alarms.set(a.id, a);
  state.receivedAt.set(a.id, Date.now());
  afterChange(a);
}

function afterChange(a) {
  if (a.state === 'raised') {
    const prev = state.alerted.get(a.id);
    const reps = a.repeats || 0;
    if (prev === undefined || reps > prev) {
      state.alerted.set(a.id, reps);
      alertFor(a);
    }
  }
  if (a.state === 'resolved' && state.resolvingId === a.id) {
    state.resolvingId = null;
    state.drafts.delete(a.id);
    if (a.resolved_by && state.me && a.resolved_by !== state.me.user) {
      showToast(t('resolvedByOther', { who: person(a.resolved_by) }));
    }
  }
}

async function refresh() {
  if (!state.me) return null;
  const seq = ++refreshSeq;
  const started = Date.now();
  const r = await api('GET', '/alarms');
  if (!state.me) return r;
  if (r.status === 401) { endSession(t('sessionEnded')); return r; }
  if (!r.ok || !r.data || seq !== refreshSeq) return r;
  const fresh = new Map();
  for (const a of r.data.alarms || []) if (a && a.id) fresh.set(a.id, a);
  for (const [id, old] of state.alarms) {
    const n = fresh.get(id);
    if (n) {
      if (isOlder(n, old)) fresh.set(id, old);
    } else if ((state.receivedAt.get(id) || 0) > started) {
      fresh.set(id, old); // came by the stream after the server took its snapshot
    }
  }
  const previous = state.alarms;
  state.alarms = fresh;
  for (const a of fresh.values()) {
    if (previous.get(a.id) !== a) {
      state.receivedAt.set(a.id, Date.now());
      afterChange(a);
    }
  }
  for (const id of previous.keys()) if (!fresh.has(id)) state.receivedAt.delete(id);
  render();
  confirmShown();
  return r;
}

// confirmShown tells the hub which open alarms this logged-in app now has
// on screen, for the alarms it alerted this user to: the app's own proof
// that the phone showed the alarm (channel "app"), for phones without
// push. Only while the page is in view; once per alarm and alert tier.
function confirmShown() {
  if (!state.me || document.hidden) return;
  for (const a of state.alarms.values()) {
    if (a.state === 'resolved') continue;
    let tier = -1;
    for (const h of a.history || []) {
      if ((h.action === 'notify' || h.action === 'escalate' || h.action === 'reminder') &&
          (h.to || []).includes(state.me.user)) tier = h.tier || 0;
    }
    if (tier < 0) continue;
    const key = a.id + '/' + tier;
    if (state.shown.has(key)) continue;
    if (!$('.alarm-card[data-alarm-id="' + CSS.escape(a.id) + '"]')) continue;
    state.shown.add(key);
    api('POST', '/alarms/' + encodeURIComponent(a.id) + '/shown', { tier }).then((r) => {
      // A network failure may be retried at the next change; a refusal
      // (not alerted, resolved) is final.
      if (r.status === 0) state.shown.delete(key);
    });
  }
}

async function act(id, action, body) {
  if (state.busy.has(id)) return; // no double taps
  state.busy.add(id);
  render();
  const path = '/alarms/' + encodeURIComponent(id) + '/' + action;
  let r = await api('POST', path, body || {});
  if (r.status === 403 && await refreshCsrf()) r = await api('POST', path, body || {});
  state.busy.delete(id);
  if (r.ok && r.data) {
    if (action === 'resolve') { state.resolvingId = null; state.drafts.delete(id); }
    if (action === 'take_over') state.confirmTakeOver = null;
    applyAlarm(r.data);
  } else if (r.status === 401) {
    return endSession(t('sessionEnded'));
  } else {
    showToast(errorText(r));
    if (r.status === 409 || r.status === 404) refresh();
  }
  render();
}

// ---------------------------------------------------------------------------
// Alerting: sound, vibration, screen reader, title.

let audioCtx = null;

// Browsers only allow sound after a user gesture, so the context is created
// (or resumed) on the first tap or key press and kept for the night.
function unlockAudio() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  if (!audioCtx) {
    try { audioCtx = new AC(); } catch (_) { return; }
    // Phones suspend audio in the background; show the hint again then.
    audioCtx.addEventListener('statechange', updateSoundHint);
  }
  if (audioCtx.state === 'suspended') audioCtx.resume().then(updateSoundHint, () => {});
  updateSoundHint();
}

function soundReady() { return !!audioCtx && audioCtx.state === 'running'; }

function updateSoundHint() {
  const AC = window.AudioContext || window.webkitAudioContext;
  $('#sound-unlock').hidden = !state.me || !AC || soundReady();
}

function beep(urgent) {
  if (!soundReady()) return;
  // Care alarms: three high pips. Technical alarms: one lower tone.
  const pips = urgent ? [0, 0.22, 0.44] : [0];
  const freq = urgent ? 880 : 520;
  const t0 = audioCtx.currentTime + 0.02;
  for (const off of pips) {
    const osc = audioCtx.createOscillator();
    const gain = audioCtx.createGain();
    osc.type = 'square';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0 + off);
    gain.gain.exponentialRampToValueAtTime(0.3, t0 + off + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + off + 0.16);
    osc.connect(gain).connect(audioCtx.destination);
    osc.start(t0 + off);
    osc.stop(t0 + off + 0.18);
  }
}

function vibrate(urgent) {
  if (navigator.vibrate) {
    try { navigator.vibrate(urgent ? [300, 150, 300, 150, 300] : [200]); } catch (_) { /* not allowed yet */ }
  }
}

function isCare(a) { return a.kind !== 'technical'; }

function alertFor(a) {
  announce(t('newAlarm', { what: describe(a) }));
  // Several alarms in one refresh make one sound, not a cacophony.
  if (Date.now() - lastAlertAt < 1500) return;
  lastAlertAt = Date.now();
  lastReminderAt = lastAlertAt;
  beep(isCare(a));
  vibrate(isCare(a));
}

// Unaccepted care alarms keep nagging until someone takes them. A stream
// lost for over a minute nags too: a phone in a pocket shows no banner.
function remind() {
  const waiting = [...state.alarms.values()].some((a) => a.state === 'raised' && isCare(a));
  const every = waiting ? ALERT_REPEAT_MS : REMIND_MS;
  if (Date.now() - lastReminderAt < every) return;
  const cutOff = !state.connected && disconnectedSince && Date.now() - disconnectedSince > OVERDUE_MS;
  if (!waiting && !cutOff && !state.loggedOut) return;
  lastReminderAt = Date.now();
  beep(waiting || state.loggedOut);
  vibrate(waiting || state.loggedOut);
}

let announceQueue = [];

// Several new alarms at once are read out together, not just the last one.
function announce(text) {
  announceQueue.push(text);
  if (announceQueue.length > 1) return;
  setTimeout(() => {
    const el = $('#announcer');
    el.textContent = ''; // so the same text twice is announced twice
    const msg = announceQueue.join('. ');
    announceQueue = [];
    setTimeout(() => { el.textContent = msg; }, 50);
  }, 100);
}

function updateTitle() {
  const n = [...state.alarms.values()].filter((a) => a.state === 'raised').length;
  document.title = (state.me && n ? '(' + n + ') ' : '') + t('appTitle');
}

function showToast(text) {
  const el = $('#toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

// ---------------------------------------------------------------------------
// Formatting.

// kindKey names what happened as staff say it: by the rule first
// ("Lämnat sängen", "Ytterdörr öppnad"), then by the device; a bed or room
// sensor never reads "Vandring".
function kindKey(a) {
  if (a.rule && has('rule_' + a.rule)) return 'rule_' + a.rule;
  if (a.kind === 'wander' || a.kind === 'other' || !a.kind) {
    if (a.dty === '0012' || a.dty === '0013' || a.dty === '0044') return 'kind_bed';
    if (a.dty === '0018') return 'kind_motion';
    if (a.dty === '0014' || a.lco === '039') return 'kind_door';
    if (a.lco === '019' || a.dty === '0051') return 'kind_geofence';
  }
  if (['call', 'fall', 'wander', 'technical', 'hazard'].includes(a.kind)) return 'kind_' + a.kind;
  return 'kind_other';
}

// where is the place in words: the names the hub sends in a.where (room,
// unit, home address) when present, else the unit and room as configured.
function where(a) {
  const w = a.where || {};
  const parts = [];
  if (w.room_name) parts.push(w.room_name);
  else if (a.room) parts.push(t('room', { room: a.room }));
  if (w.unit_name) parts.push(w.unit_name);
  else if (a.unit) parts.push(a.unit);
  if (!parts.length && w.site_name) parts.push(w.site_name);
  // Technical cards name the base station first: that is where the
  // technician goes.
  if (a.kind === 'technical' && a.gateway) parts.unshift(t('gateway', { id: a.gateway }));
  return parts.join(' · ') || w.site_name || a.site || '';
}

function deviceText(a) {
  const dt = a.where && a.where.device_text;
  if (dt && (dt[state.lang] || dt.sv)) return dt[state.lang] || dt.sv;
  return a.dty && has('dty_' + a.dty) ? t('dty_' + a.dty) : '';
}

function describe(a) {
  const w = where(a);
  return t(kindKey(a)) + (w ? ', ' + w : '');
}

function clock(iso) {
  const v = time(iso);
  if (!v) return '';
  const d = new Date(v);
  const opts = { hour: '2-digit', minute: '2-digit' };
  if (now() - v > 20 * 3600 * 1000) { opts.day = 'numeric'; opts.month = 'short'; }
  return d.toLocaleString(locale(), opts);
}

function ageText(iso) {
  const v = time(iso);
  if (!v) return '';
  const s = Math.max(0, Math.floor((now() - v) / 1000));
  if (s < 10) return t('justNow');
  if (s < 60) return t('agoSec', { n: s });
  const m = Math.floor(s / 60);
  if (m < 60) return t('agoMin', { n: m });
  const h = Math.floor(m / 60);
  if (h < 24) return t('agoHour', { h, m: m % 60 });
  return t('agoDay', { n: Math.floor(h / 24) });
}

// person names who did something: "dig" for me, a colleague by display
// name (never the login name), a rule by what it watches, the hub's own
// steps as "systemet".
function person(user) {
  if (!user) return '';
  if (state.me && user === state.me.user) return t('you');
  if (user.startsWith('rule:')) {
    const r = user.slice(5);
    return has('rule_' + r) ? t('rule_' + r) : t('system');
  }
  if (user.startsWith('unit:')) return t('alarmUnit');
  if (user === 'notify' || user === 'hub' || user === 'system') return t('system');
  if (user.startsWith('webhook:')) return t('via_webhook');
  return state.names[user] || user;
}

// Notes the hub writes are "svenska / English": show the half for the
// language. Staff's own notes are never split. Notification reasons are
// codes and become words (reasonText).
function noteText(note) {
  if (!note) return '';
  const i = note.indexOf(' / ');
  if (i > 0) return state.lang === 'sv' ? note.slice(0, i) : note.slice(i + 3);
  return note;
}

function goDuration(d) {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(d || '');
  if (!m) return '';
  const h = +(m[1] || 0), min = +(m[2] || 0), sec = Math.round(+(m[3] || 0));
  const parts = [];
  if (h) parts.push(h + ' h');
  if (min) parts.push(min + ' min');
  if (sec && !h) parts.push(sec + ' s');
  return parts.join(' ') || '0 s';
}

function reasonText(r) {
  if (!r) return '';
  if (r === 'raised') return t('reason_raised');
  if (r === 'not accepted yet') return t('reason_not_accepted');
  let m = /^not accepted within (\S+)$/.exec(r);
  if (m) return t('reason_not_accepted_within', { d: goDuration(m[1]) });
  m = /^not delivered within (\S+)$/.exec(r);
  if (m) return t('reason_not_delivered_within', { d: goDuration(m[1]) });
  return ''; // an unknown code is left out rather than shown raw
}

// ---------------------------------------------------------------------------
// Rendering. Cards are rebuilt only when their alarm (or the UI state that
// shapes them) changes, and moved only when the order changes, so a note
// being typed or a focused button survives updates from colleagues.

// el('p', {class: 'x', dataset: {a: 'b'}}, 'text', child…)
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false || c === '') continue;
    e.append(c);
  }
  return e;
}

const ICONS = {
  call: '<path d="M6 9a6 6 0 0 1 12 0c0 6 2.5 8 2.5 8h-17S6 15 6 9"/><path d="M10 20.5a2.2 2.2 0 0 0 4 0"/>',
  fall: '<circle cx="16.5" cy="4.5" r="2"/><path d="M14 8 9 11.5l3 3-1.5 5.5"/><path d="M9 11.5 5 10.5"/><path d="M12 14.5l5 .5"/><path d="M3 21.5h18"/>',
  wander: '<path d="M13 3.5H6v17h7"/><path d="M10 12h10"/><path d="M16.5 8.5 20 12l-3.5 3.5"/>',
  technical: '<path d="M12 3.5 21.5 20h-19z"/><path d="M12 10v4.5"/><path d="M12 17.3v.2"/>',
};

function icon(kind) {
  const span = el('span', { class: 'kind-icon', 'aria-hidden': 'true' });
  // Static markup from ICONS only, never alarm data.
  span.innerHTML = '<svg viewBox="0 0 24 24" width="28" height="28" fill="none" stroke="currentColor" ' +
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">' + (ICONS[kind] || ICONS.call) + '</svg>';
  return span;
}

function cardKey(a) {
  return [a.updated_at, lastSeq(a), state.lang, state.resolvingId === a.id, state.busy.has(a.id),
    state.me ? state.me.user : '', isCollapsed(a), state.confirmTakeOver === a.id,
    JSON.stringify(a.where || null), JSON.stringify(a.access || null), JSON.stringify(a.group || null)].join('|');
}

function mine(a) { return !!(state.me && a.accepted_by === state.me.user); }

// Accepted alarms (someone else's) and technical ones collapse to one
// line; tap to expand. Unaccepted care alarms and my own never do.
function isCollapsed(a) {
  if (state.expanded.has(a.id) || state.resolvingId === a.id || state.confirmTakeOver === a.id) return false;
  if (a.state === 'resolved') return true;
  if (a.kind === 'technical') return !mine(a);
  return a.state !== 'raised' && !mine(a);
}

// The line that says how old the alarm is and how often it came:
// "Larmade för 20 min sedan · tryckt 6 gånger, senast för 1 min sedan".
function ageLine(a) {
  const reps = a.repeats || 0;
  let lastRep = a.last_repeat_at || '';
  if (!lastRep && reps) {
    for (const h of a.history || []) if (h.action === 'repeat') lastRep = h.at;
  }
  return el('p', { class: 'meta' },
    el('span', { class: 'age', dataset: { since: a.raised_at || '', tpl: 'raisedAgo' } }, t('raisedAgo', { ago: ageText(a.raised_at) })),
    reps > 0 ? el('span', { class: 'repeats' },
      t(a.kind === 'call' ? 'repeatsCall' : 'repeatsOther', { n: reps + 1 }),
      lastRep ? ', ' : '',
      lastRep ? el('span', { class: 'age', dataset: { since: lastRep, tpl: 'lastAgo' } }, t('lastAgo', { ago: ageText(lastRep) })) : null) : null);
}

function buildCard(a) {
  const open = a.state !== 'resolved';
  const busy = state.busy.has(a.id);
  const kind = ['call', 'fall', 'wander', 'technical', 'hazard'].includes(a.kind) ? a.kind : 'other';
  const prio = a.priority || 9;
  const headId = 'alarm-h-' + a.id;
  const collapsed = isCollapsed(a);
  const card = el('li', {
    class: 'alarm-card kind-' + kind + ' state-' + a.state + (prio === 1 ? ' prio-1' : '') + (collapsed ? ' collapsed' : ''),
    tabindex: '-1',
    'aria-labelledby': headId,
    dataset: { alarmId: a.id, state: a.state, kind: a.kind || '', priority: String(prio), collapsed: String(collapsed) },
  });

  card.append(el('div', { class: 'card-head' },
    icon(kind),
    el('h3', { class: 'kind-label', id: headId }, t(kindKey(a))),
    el('span', { class: 'state-badge', dataset: { state: a.state } }, t('state_' + a.state)),
  ));

  card.append(el('p', { class: 'where' }, where(a) || '—'));
  const addr = a.where && a.where.address;
  if (addr) card.append(el('p', { class: 'address' }, addr));

  if (a.resident_name || a.resident) {
    card.append(el('p', { class: 'resident' },
      a.resident_name ? el('strong', { class: 'resident-name' }, a.resident_name)
        : el('span', { class: 'resident-id' }, t('resident', { id: a.resident }))));
  }

  if (a.accepted_by) {
    const from = lastTakeOverFrom(a);
    card.append(el('p', { class: 'accepted-by' + (mine(a) ? ' mine' : '') },
      t('acceptedBy', { who: person(a.accepted_by), time: clock(a.accepted_at) }),
      from ? ' (' + t('takenFrom', { who: person(from) }) + ')' : ''));
  }
  card.append(ageLine(a));
  const grp = groupSection(a); // a group of technical alarms (end of file)
  if (grp) card.append(grp);

  if (collapsed) {
    card.append(el('button', { type: 'button', class: 'btn-link expand', 'aria-expanded': 'false', dataset: { toggle: a.id } }, t('expand')));
    return card;
  }

  // What the device is, in words; technical cards name the base station
  // and the device, which is what the technician looks for.
  const cause = [deviceText(a), a.stc && has('stc_' + a.stc) ? t('stc_' + a.stc) : '',
    a.lco && has('lco_' + a.lco) && a.lco !== '035' ? t('lco_' + a.lco) : ''].filter(Boolean).join(' · ');
  if (cause) card.append(el('p', { class: 'cause' }, cause));
  if (a.kind === 'technical' && a.device) card.append(el('p', { class: 'gateway' }, t('deviceId', { id: a.device })));

  if (a.access && (a.access.key_box || a.access.door_code || a.access.note)) {
    card.append(el('div', { class: 'access' },
      a.access.door_code ? el('p', {}, t('accessDoorCode', { v: a.access.door_code })) : null,
      a.access.key_box ? el('p', {}, t('accessKeyBox', { v: a.access.key_box })) : null,
      a.access.note ? el('p', {}, t('accessNote', { v: a.access.note })) : null));
  }

  if (a.pos && typeof a.pos.lat === 'number' && typeof a.pos.lon === 'number') {
    if (window.VakaMap && typeof window.VakaMap.render === 'function') {
      // Drawn once the card is on screen (it needs its size); a new
      // position rebuilds the card, so the map follows while it is open.
      card.append(el('div', { class: 'map', dataset: { map: a.id } }));
    } else {
      card.append(el('p', { class: 'pos' },
        t('position', { lat: a.pos.lat.toFixed(5), lon: a.pos.lon.toFixed(5) }),
        a.pos.acc ? ' ' + t('accuracy', { acc: Math.round(a.pos.acc) }) : ''));
      if (Array.isArray(a.track) && a.track.length >= 2) card.append(buildTrack(a.track));
    }
  }

  // A SCAIP unit's caller id (crd, "gsm:+4670…"), and whether it asked
  // to be called back (cha 1): a number staff can dial from the card.
  if (typeof a.crd === 'string' && a.crd.includes(':')) {
    const medium = a.crd.slice(0, a.crd.indexOf(':'));
    const num = a.crd.slice(a.crd.indexOf(':') + 1);
    const href = medium === 'sip' || medium === 'sip-pp' ? 'sip:' + num : 'tel:' + num.replace(/[^+0-9]/g, '');
    card.append(el('p', { class: 'callback', dataset: { asked: a.cha === '1' ? '1' : '0' } },
      t(a.cha === '1' ? 'callbackAsked' : 'callback', { n: '' }), el('a', { href }, num)));
  }

  const notified = (a.history || []).some((h) => h.action === 'notify');
  const centre = (a.deliveries || []).find((d) => d.channel === 'scaip');
  if (centre && open) card.append(el('p', { class: 'at-centre' }, t('atCentre', { time: clock(centre.at) })));
  const phones = [...new Set((a.deliveries || []).filter((d) => d.channel !== 'scaip').map((d) => person(d.user)))];
  if (phones.length) {
    card.append(el('p', { class: 'delivery', dataset: { delivered: String(phones.length) } }, t('deliveredTo', { who: phones.join(', ') })));
  } else if (notified && open) {
    card.append(el('p', { class: 'delivery delivery-missing', dataset: { delivered: '0' } }, t('notDelivered')));
  }
  if (a.tier > 0 && open) card.append(el('p', { class: 'escalated', dataset: { tier: String(a.tier) } }, t('escalatedTo', { n: a.tier + 1 })));

  if (a.presence_at) card.append(el('p', { class: 'presence-at' }, t('presenceAt', { time: clock(a.presence_at) })));
  if (a.restored_at) card.append(el('p', { class: 'restored' }, t('restored', { time: clock(a.restored_at) })));
  if (!open) {
    card.append(el('p', { class: 'resolved-by' },
      t('resolvedBy', { who: person(a.resolved_by), time: clock(a.resolved_at) }),
      a.outcome ? ' · ' : '', a.outcome ? el('strong', { class: 'outcome' }, t('outcome_' + a.outcome)) : null));
    if (a.note) card.append(el('p', { class: 'note' }, a.note)); // the staff member's own words
  }

  if (open && mayAnswer(a)) {
    const actions = el('div', { class: 'actions' });
    const button = (action, label, cls) => el('button', {
      type: 'button', class: 'btn ' + cls, disabled: busy, dataset: { action, alarmId: a.id },
    }, label);
    const other = a.accepted_by && !mine(a);
    if (a.state === 'raised') actions.append(button('accept', t('accept'), 'btn-primary'));
    else if (other && state.confirmTakeOver === a.id) {
      card.append(el('p', { class: 'takeover-ask', role: 'alert' }, t('takeOverAsk', { who: person(a.accepted_by) })));
      actions.append(button('take_over', t('takeOverYes'), 'btn-primary'), button('take-over-cancel', t('cancel'), 'btn-secondary'));
    } else if (other) actions.append(button('take-over-ask', t('takeOver'), 'btn-secondary'));
    else {
      if (a.state === 'accepted') actions.append(button('presence', t('presence'), 'btn-primary'));
      if ((a.state === 'accepted' || a.state === 'presence') && state.resolvingId !== a.id) {
        actions.append(button('resolve', t('resolve'), a.state === 'presence' ? 'btn-primary' : 'btn-secondary'));
      }
    }
    card.append(actions);
    if (state.resolvingId === a.id && !other) card.append(buildResolveForm(a, busy));
  }

  if (a.history && a.history.length) card.append(buildHistory(a));
  if (state.expanded.has(a.id)) {
    card.append(el('button', { type: 'button', class: 'btn-link expand', 'aria-expanded': 'true', dataset: { toggle: a.id } }, t('collapse')));
  }
  return card;
}

function lastTakeOverFrom(a) {
  let from = '';
  for (const h of a.history || []) if (h.action === 'take_over' && h.by === a.accepted_by) from = h.from || '';
  return from;
}

function buildResolveForm(a, busy) {
  const draft = state.drafts.get(a.id) || { outcome: '', note: '', hint: false };
  const choices = el('div', { class: 'outcomes' });
  for (const o of OUTCOMES) {
    choices.append(el('button', {
      type: 'button', class: 'btn btn-outcome', 'aria-pressed': draft.outcome === o ? 'true' : 'false',
      dataset: { outcome: o, alarmId: a.id },
    }, t('outcome_' + o)));
  }
  return el('form', { id: 'resolve-form', class: 'resolve-form', dataset: { alarmId: a.id }, novalidate: true },
    el('fieldset', { class: 'outcome-set' },
      el('legend', {}, t('outcomeLegend')),
      choices),
    el('p', { id: 'resolve-hint', class: 'hint', role: 'alert', hidden: !draft.hint }, t('chooseOutcome')),
    el('label', { for: 'resolve-note', class: 'note-label' }, t('note')),
    (() => { const ta = el('textarea', { id: 'resolve-note', rows: '3', maxlength: '1000' }); ta.value = draft.note; return ta; })(),
    el('div', { class: 'actions' },
      el('button', { type: 'submit', id: 'resolve-submit', class: 'btn btn-primary', disabled: busy }, t('submitResolve')),
      el('button', { type: 'button', id: 'resolve-cancel', class: 'btn btn-secondary' }, t('cancel'))),
  );
}

// A short track as inline SVG (no map tiles: the hub works offline). The
// points are scaled into the box; north is up, the newest point is ringed.
function buildTrack(track) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 320, H = 120, PAD = 10;
  const pts = track.filter((p) => typeof p.lat === 'number' && typeof p.lon === 'number').slice(-20);
  const lats = pts.map((p) => p.lat), lons = pts.map((p) => p.lon);
  const minLat = Math.min(...lats), maxLat = Math.max(...lats), minLon = Math.min(...lons), maxLon = Math.max(...lons);
  const kx = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
  const span = Math.max((maxLon - minLon) * kx, maxLat - minLat, 1e-5);
  const scale = Math.min(W - 2 * PAD, H - 2 * PAD) / span;
  const xy = pts.map((p) => [PAD + (p.lon - minLon) * kx * scale, H - PAD - (p.lat - minLat) * scale]);
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.setAttribute('class', 'track');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', t('trackLabel', { n: pts.length }));
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('points', xy.map((q) => q[0].toFixed(1) + ',' + q[1].toFixed(1)).join(' '));
  line.setAttribute('class', 'track-line');
  svg.append(line);
  xy.forEach((q, i) => {
    const c = document.createElementNS(NS, 'circle');
    c.setAttribute('cx', q[0].toFixed(1));
    c.setAttribute('cy', q[1].toFixed(1));
    c.setAttribute('r', i === xy.length - 1 ? '6' : '3');
    c.setAttribute('class', i === xy.length - 1 ? 'track-last' : 'track-point');
    svg.append(c);
  });
  return el('figure', { class: 'track-box' }, svg);
}

// Web Push: register the service worker and subscribe this phone, so a
// locked phone alerts and its service worker can confirm receipt. Any
// failure (no permission, no push service) leaves the live list working.
async function setupPush() {
  await setupPushInner();
  showNotifyBanner();
}

// The banner that says a locked phone will not alert, and how to fix it
// on Android and on iPhone (home-screen app, iOS 16.4 or later).
function showNotifyBanner() {
  const push = document.documentElement.dataset.push || '';
  const perm = ('Notification' in window) ? Notification.permission : 'unsupported';
  let key = '';
  if (perm === 'denied' || push === 'denied') key = 'notifyDenied';
  else if (push === 'unsupported' || perm === 'unsupported') key = 'notifyUnsupported';
  else if (perm === 'default') key = 'notifyDefault';
  const banner = $('#notify-banner');
  banner.hidden = !key || !state.me;
  banner.dataset.reason = key;
  if (!key) return;
  $('#notify-text').textContent = t(key);
  $('#notify-enable').hidden = key !== 'notifyDefault';
  $('#fix-android').textContent = t('fixAndroid');
  $('#fix-ios').textContent = t('fixIOS');
}

async function setupPushInner() {
  const root = document.documentElement;
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) { root.dataset.push = 'unsupported'; return; }
  try {
    const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    root.dataset.sw = 'registered';
    const r = await api('GET', '/push/key');
    if (!r.ok || !r.data || !r.data.key) { root.dataset.push = 'off'; return; }
    const key = b64urlBytes(r.data.key);
    let sub = await reg.pushManager.getSubscription();
    if (sub && sub.options && sub.options.applicationServerKey &&
        !sameBytes(new Uint8Array(sub.options.applicationServerKey), key)) {
      await sub.unsubscribe(); // the hub's key changed
      sub = null;
    }
    if (!sub) {
      if (Notification.permission === 'default') await Notification.requestPermission();
      if (Notification.permission !== 'granted') { root.dataset.push = 'denied'; return; }
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    const s = await api('POST', '/push/subscriptions', sub.toJSON());
    root.dataset.push = s.ok ? 'on' : 'off';
  } catch (_) {
    root.dataset.push = 'off';
  }
}

function b64urlBytes(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

function sameBytes(a, b) { return a.length === b.length && a.every((v, i) => v === b[i]); }

// One history line in words: when, what, who (display names), and the
// detail that matters for that step. No code reaches the screen.
function historyLine(a, h) {
  const what = has('action_' + h.action) ? t('action_' + h.action) : t('action_other');
  const parts = [];
  switch (h.action) {
    case 'raise':
      parts.push(t(kindKey(a)));
      if (h.note && h.note.indexOf(' / ') > 0) parts.push(noteText(h.note));
      break;
    case 'notify':
    case 'escalate':
    case 'reminder': {
      const to = (h.to || []).map(person).filter(Boolean);
      if (to.length) parts.push(to.join(', '));
      if (h.tier) parts.push(t('tier', { n: h.tier + 1 }));
      const r = reasonText(h.note);
      if (r) parts.push(r);
      break;
    }
    case 'delivered': {
      const via = h.channel || (String(h.phone || '').startsWith('app:') ? 'app' : String(h.phone || '').startsWith('webhook:') ? 'webhook' : 'push');
      if (via !== 'webhook') parts.push(t('onPhoneOf', { who: person(h.by) }));
      if (has('via_' + via)) parts.push(t('via_' + via));
      break;
    }
    case 'take_over':
      parts.push(t('by', { who: person(h.by) }));
      if (h.from) parts.push(t('takenFrom', { who: person(h.from) }));
      break;
    case 'accept':
    case 'presence':
    case 'resolve':
      if (h.by) parts.push(t('by', { who: person(h.by) }));
      if (h.outcome) parts.push(t('outcome_' + h.outcome));
      if (h.note) parts.push('“' + h.note + '”'); // staff's own words, as typed
      break;
    default:
      if (h.note && h.note.indexOf(' / ') > 0) parts.push(noteText(h.note));
  }
  return el('li', { dataset: { step: h.action || '' } },
    el('time', { datetime: h.at || '' }, clock(h.at)), ' ', what, parts.length ? ' · ' + parts.join(' · ') : '');
}

function buildHistory(a) {
  const list = el('ol', { class: 'history-list' });
  for (const h of a.history) list.append(historyLine(a, h));
  return el('details', { class: 'history' }, el('summary', {}, t('history')), list);
}

function cardFor(a) {
  const key = cardKey(a);
  const cached = state.cards.get(a.id);
  if (cached && cached.key === key) return cached.el;
  const card = buildCard(a);
  state.cards.set(a.id, { el: card, key });
  return card;
}

// Put exactly `wanted` into `list` in order, touching only what differs.
function reconcile(list, wanted) {
  wanted.forEach((node, i) => {
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
  while (list.children.length > wanted.length) list.lastElementChild.remove();
}

// Urgency first: care before technical, then priority, then unaccepted
// before accepted; then age, the one waiting longest first.
function compareOpen(a, b) {
  return (isCare(a) ? 0 : 1) - (isCare(b) ? 0 : 1) ||
    (a.priority || 9) - (b.priority || 9) ||
    (a.state === 'raised' ? 0 : 1) - (b.state === 'raised' ? 0 : 1) ||
    time(a.raised_at) - time(b.raised_at) || (a.id < b.id ? -1 : 1);
}

// takeoverFor picks the alarm that takes over the screen: the newest
// unaccepted one (the last to come in or to be pressed again), care
// before technical. It stays in the sticky slot until someone takes it.
function takeoverFor(open) {
  let best = null, bestAt = 0;
  // Technical alarms take over the screen only for technicians (who see
  // nothing else); for carers they wait, collapsed, in the list.
  const techToo = !!state.me && state.me.role === 'technician';
  for (const a of open) {
    if (a.state !== 'raised' || (!isCare(a) && !techToo)) continue;
    const at = Math.max(time(a.raised_at), time(a.last_repeat_at));
    if (!best || (isCare(a) && !isCare(best)) || (isCare(a) === isCare(best) && at > bestAt)) { best = a; bestAt = at; }
  }
  return best;
}

function compareResolved(a, b) {
  return time(b.resolved_at || b.updated_at) - time(a.resolved_at || a.updated_at);
}

function render() {
  // Remember focus inside a card so it can be put back after a rebuild.
  const active = document.activeElement;
  const focusCard = active && active.closest ? active.closest('.alarm-card') : null;
  let focus = null;
  if (focusCard) {
    focus = { id: focusCard.dataset.alarmId, sel: focusSelector(active), caret: active.selectionStart };
  }

  const open = [];
  let done = [];
  for (const a of state.alarms.values()) (a.state === 'resolved' ? done : open).push(a);
  open.sort(compareOpen);
  done.sort(compareResolved);
  for (const a of done.slice(MAX_RESOLVED)) { state.alarms.delete(a.id); state.receivedAt.delete(a.id); }
  done = done.slice(0, MAX_RESOLVED);
  for (const id of state.cards.keys()) if (!state.alarms.has(id)) state.cards.delete(id);
  for (const id of state.alerted.keys()) if (!state.alarms.has(id)) state.alerted.delete(id);

  const top = takeoverFor(open);
  state.takeoverId = top ? top.id : null;
  reconcile($('#takeover-slot'), top ? [cardFor(top)] : []);
  $('#takeover').hidden = !top;
  // Shrunk to one line (still sticky, still sounding) until another
  // alarm takes its place.
  const small = !!top && state.takeoverMin === top.id;
  $('#takeover').classList.toggle('minimized', small);
  $('#takeover-min').textContent = t(small ? 'takeoverMax' : 'takeoverMin');
  $('#takeover-min').setAttribute('aria-expanded', small ? 'false' : 'true');
  if (top) {
    const waiting = open.filter((a) => a.state === 'raised' && a !== top).length;
    $('#takeover-others').textContent = [waiting ? t('othersWaiting', { n: waiting }) : '',
      open.length > 1 ? t('othersOpen', { n: open.length }) : ''].filter(Boolean).join(' · ');
  }
  reconcile($('#open-alarms'), open.filter((a) => a !== top).map(cardFor));
  reconcile($('#resolved-alarms'), done.map(cardFor));
  drawMaps();
  $('#no-alarms').hidden = open.length > 0;
  $('#open-count').textContent = open.length ? '(' + open.length + ')' : '';
  $('#resolved-count').textContent = String(done.length);
  $('#resolved').hidden = done.length === 0;

  const nowActive = document.activeElement;
  if (focus && !(nowActive && nowActive.closest && nowActive.closest('.alarm-card'))) restoreFocus(focus);
  tick();
}

// drawMaps hands each new map slot to map.js (window.VakaMap), if loaded.
function drawMaps() {
  if (!window.VakaMap || typeof window.VakaMap.render !== 'function') return;
  for (const slot of $$('.map[data-map]:not([data-drawn])')) {
    const a = state.alarms.get(slot.dataset.map);
    if (!a) continue;
    slot.dataset.drawn = '1';
    try { window.VakaMap.render(slot, a); } catch (_) { slot.hidden = true; }
  }
}

function focusSelector(node) {
  if (node.id) return '#' + node.id;
  if (node.dataset.action) return '[data-action="' + node.dataset.action + '"]';
  if (node.dataset.outcome) return '[data-outcome="' + node.dataset.outcome + '"]';
  return null;
}

function restoreFocus(f) {
  let card = $('#open-alarms .alarm-card[data-alarm-id="' + CSS.escape(f.id) + '"]') ||
    $('#takeover-slot .alarm-card[data-alarm-id="' + CSS.escape(f.id) + '"]');
  if (!card) {
    // The alarm was closed (or vanished): go on to the next open one.
    const next = $('#open-alarms .alarm-card') || $('#alarms-heading');
    if (next) next.focus();
    return;
  }
  const target = (f.sel && $(f.sel, card)) || $('button:not([disabled])', card) || card;
  target.focus();
  if (target.id === 'resolve-note' && typeof f.caret === 'number') target.setSelectionRange(f.caret, f.caret);
}

// Cheap per-second work: ages, overdue marks, title, reminders.
function tick() {
  for (const span of $$('.age[data-since]')) {
    const ago = ageText(span.dataset.since);
    const text = span.dataset.tpl ? t(span.dataset.tpl, { ago }) : ago;
    if (span.textContent !== text) span.textContent = text;
  }
  for (const card of $$('#open-alarms .alarm-card, #takeover-slot .alarm-card')) {
    const a = state.alarms.get(card.dataset.alarmId);
    // The 60 s answer target is for care alarms; technical ones do not flash.
    card.classList.toggle('overdue', !!a && isCare(a) && a.state === 'raised' && now() - time(a.raised_at) > OVERDUE_MS);
  }
  updateTitle();
  if (state.me || state.loggedOut) remind();
}

// ---------------------------------------------------------------------------
// Events. One delegated listener for all cards.

function onAlarmsClick(ev) {
  const target = ev.target.closest('button');
  if (!target || target.disabled) return;
  const card = target.closest('.alarm-card');
  if (!card) return;
  const id = card.dataset.alarmId;

  if (target.dataset.toggle) {
    if (state.expanded.has(id)) state.expanded.delete(id); else state.expanded.add(id);
    render();
    return;
  }
  if (target.dataset.action === 'accept' || target.dataset.action === 'presence' || target.dataset.action === 'take_over') {
    act(id, target.dataset.action);
  } else if (target.dataset.action === 'take-over-ask') {
    state.confirmTakeOver = id;
    render();
    const yes = $('.alarm-card[data-alarm-id="' + CSS.escape(id) + '"] [data-action="take_over"]');
    if (yes) yes.focus();
  } else if (target.dataset.action === 'take-over-cancel') {
    state.confirmTakeOver = null;
    render();
  } else if (target.dataset.action === 'resolve') {
    state.resolvingId = id;
    render();
    const first = $('[data-outcome]', card.isConnected ? card : document);
    if (first) first.focus();
  } else if (target.dataset.outcome) {
    const d = draftFor(id);
    d.outcome = target.dataset.outcome;
    d.hint = false;
    for (const b of $$('[data-outcome]', card)) b.setAttribute('aria-pressed', b === target ? 'true' : 'false');
    $('#resolve-hint').hidden = true;
  } else if (target.id === 'resolve-cancel') {
    state.resolvingId = null;
    state.drafts.delete(id);
    state.cards.delete(id);
    render();
    const k = $('.alarm-card[data-alarm-id="' + CSS.escape(id) + '"] [data-action="resolve"]');
    if (k) k.focus();
  }
}

function onAlarmsSubmit(ev) {
  if (ev.target.id !== 'resolve-form') return;
  ev.preventDefault();
  const id = ev.target.dataset.alarmId;
  const d = draftFor(id);
  d.note = $('#resolve-note').value;
  if (!d.outcome) {
    d.hint = true;
    $('#resolve-hint').hidden = false;
    const first = $('[data-outcome]', ev.target);
    if (first) first.focus();
    return;
  }
  act(id, 'resolve', { outcome: d.outcome, note: d.note.trim() });
}

function onAlarmsInput(ev) {
  if (ev.target.id === 'resolve-note') {
    const form = ev.target.closest('form');
    if (form) draftFor(form.dataset.alarmId).note = ev.target.value;
  }
}

function draftFor(id) {
  if (!state.drafts.has(id)) state.drafts.set(id, { outcome: '', note: '', hint: false });
  return state.drafts.get(id);
}

function init() {
  applyStaticStrings();
  $('#login-form').addEventListener('submit', onLogin);
  $('#logout-button').addEventListener('click', onLogout);
  $('#lang-toggle').addEventListener('click', () => setLang(state.lang === 'sv' ? 'en' : 'sv'));
  $('#sound-unlock').addEventListener('click', () => { unlockAudio(); beep(false); });
  $('#toast').addEventListener('click', () => { $('#toast').hidden = true; });
  for (const root of [$('#alarms'), $('#takeover')]) {
    root.addEventListener('click', onAlarmsClick);
    root.addEventListener('submit', onAlarmsSubmit);
    root.addEventListener('input', onAlarmsInput);
  }
  $('#takeover-min').addEventListener('click', () => {
    state.takeoverMin = state.takeoverMin === state.takeoverId ? null : state.takeoverId;
    render();
  });
  $('#notify-enable').addEventListener('click', async () => {
    try { await Notification.requestPermission(); } catch (_) { /* old Safari: callback form */ }
    setupPush();
  });
  // Any first touch or key press unlocks sound for the rest of the night.
  for (const type of ['pointerdown', 'keydown', 'touchend']) {
    document.addEventListener(type, unlockAudio, { capture: true, passive: true });
  }
  window.addEventListener('offline', () => { if (state.me) setConnected(false); });
  window.addEventListener('online', () => { if (state.me) reconnectNow(); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) { watchdog(); confirmShown(); } });
  setInterval(tick, 1000);
  checkSession();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();

// ---------------------------------------------------------------------------
// Alarm storms (issue 20): groups of technical alarms and skipped technical
// updates. Self-contained: buildCard calls groupSection, connectStream
// routes the stream's "skipped" event here.

// groupSection is the part of a group alarm's card that says how many
// technical alarms it stands for and lists the members the hub sent (the
// first 50; all are at /api/v1/alarms/{id}/members). Null for any other
// alarm: care alarms are never grouped.
function groupSection(a) {
  const g = a && a.group;
  if (!g) return null;
  const sv = state.lang === 'sv';
  const members = Array.isArray(g.members) ? g.members : [];
  const list = el('ul', { class: 'group-members' });
  for (const m of members) {
    list.append(el('li', { dataset: { alarmId: m.alarm || '' } },
      // The member's cause in words (kindKey), never the rule's code.
      (m.device || m.alarm || '') + (m.gateway ? ' · ' + t('gateway', { id: m.gateway }) : '') +
        (m.rule && has('rule_' + m.rule) ? ' · ' + t('rule_' + m.rule) : ''),
      m.restored_at ? (sv ? ' (tillbaka)' : ' (back)') : ''));
  }
  const more = (g.count || 0) - members.length;
  return el('details', { class: 'group', dataset: { count: String(g.count || 0) } },
    el('summary', {}, sv ? g.count + ' tekniska larm i gruppen' : g.count + ' technical alarms in this group'),
    list,
    more > 0 ? el('p', { class: 'group-more' }, sv ? 'och ' + more + ' till' : 'and ' + more + ' more') : null);
}

// onTechnicalSkipped: the hub dropped technical updates this screen was too
// slow to take (never a care alarm) and says how many; the list is
// refetched so nothing stays stale.
function onTechnicalSkipped(src) {
  if (es !== src) return;
  lastStreamAt = Date.now();
  refresh();
}
