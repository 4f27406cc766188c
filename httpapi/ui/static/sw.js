// Vaka service worker: shows an alarm push on a locked phone and proves it
// did, by posting a delivery receipt to the hub. Served from /sw.js so its
// scope is the whole app. The payload is encrypted to this phone (RFC 8291)
// and carries a receipt token only this subscription knows, so the receipt
// needs no session cookie or CSRF header.
'use strict';

// Words, not codes, on the lock screen (issue 15): by rule first, as in
// the app (app.js STRINGS.sv rule_*), then by kind and device.
const RULE = {
  call_button: 'Trygghetslarm', fall: 'Fall', door_at_night: 'Ytterdörr öppnad',
  room_door_at_night: 'Rumsdörr öppnad, sängen tom', door_open_too_long: 'Dörr öppen för länge',
  bed_exit: 'Lämnat sängen', geofence_exit: 'Utanför hemområdet', inactivity: 'Ingen rörelse hemma',
  device_silent: 'Enhet hörs inte', battery_low: 'Lågt batteri', tamper: 'Enhet öppnad eller flyttad',
  gateway_offline: 'Basstation ur kontakt', gateway_fault: 'Fel i basstationen', hub_integrity: 'Fel i larmservern',
  smoke: 'Rökvarnare', water_leak: 'Vattenläcka', gas: 'Gasläcka', carbon_monoxide: 'Kolmonoxid',
};
const DTY = { '0012': 'Lämnat sängen', '0013': 'Lämnat sängen', '0018': 'Rörelse i rummet', '0014': 'Dörr öppnad', '0051': 'Utanför hemområdet' };
const KIND = { call: 'Trygghetslarm', fall: 'Fall', wander: 'Vandring', technical: 'Tekniskt larm', hazard: 'Brand, gas eller vatten' };
const STEP = { reminder: 'Påminnelse: ', escalate: 'Ej taget – ', notify: '' };

function what(p) {
  if (RULE[p.rule]) return RULE[p.rule];
  if (p.kind === 'wander' && DTY[p.dty]) return DTY[p.dty];
  return KIND[p.kind] || 'Larm';
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()));

self.addEventListener('push', (ev) => {
  let p = {};
  try { p = ev.data ? ev.data.json() : {}; } catch (_) { p = {}; }
  const title = (STEP[p.step] || '') + what(p) + (p.room ? ' – rum ' + p.room : '');
  const body = [p.unit, p.site].filter(Boolean).join(' · ');
  const shown = self.registration.showNotification(title, {
    body,
    tag: 'alarm-' + (p.alarm || ''),
    renotify: true,
    requireInteraction: true,
    vibrate: [500, 200, 500, 200, 500],
    icon: '/static/icon.svg',
    lang: 'sv',
    data: { alarm: p.alarm },
  });
  // The receipt goes only after the notification is shown: that is the proof.
  const receipt = shown.then(() => {
    if (!p.alarm || !p.receipt) return undefined;
    return fetch('/api/v1/alarms/' + encodeURIComponent(p.alarm) + '/delivered', {
      method: 'POST',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ receipt: p.receipt, step: p.step || 'notify', tier: p.tier || 0 }),
    });
  }).catch(() => undefined);
  ev.waitUntil(receipt);
});

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  ev.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((wins) => {
    for (const w of wins) if ('focus' in w) return w.focus();
    return self.clients.openWindow('/');
  }));
});
