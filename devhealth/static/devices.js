// Vaka device-health page: reads GET /api/v1/devices every 15 s and lists
// gateways and devices, trouble first (the API sorts devices). One
// language at a time (Swedish first, English by the button, remembered on
// this phone), with words instead of codes: device types, states,
// durations ("högst 30 min"), battery. Built with DOM calls and
// textContent only: nothing from the API becomes markup.
"use strict";

(function () {
  const T = {
    sv: {
      heading: "Enhetsstatus", title: "Vaka – enhetsstatus", other: "English", otherLang: "en",
      loginFirst: "Logga in först i", comeBack: ", kom sedan tillbaka hit.", summary: "Sammanfattning",
      gateways: "Larmenheter (gateways)", devices: "Enheter", order: "Tysta, aldrig hörda och låg batterinivå först.",
      status: {
        silent: "Tyst", never_heard: "Aldrig hörd – ej parkopplad?", not_heard_since_restart: "Inte hörd sedan omstart",
        low_battery: "Lågt batteri", tamper: "Sabotage", ok: "OK", offline: "Ingen kontakt", online: "I drift", degraded: "Problem",
      },
      lastBeat: "Senaste livstecken", spool: "Väntande händelser (kö)", dropped: "Tappade händelser", drivers: "Drivrutiner",
      noReport: "Ingen hälsorapport ännu", report: "Hälsorapport",
      where: "Plats", site: "Område", gateway: "Larmenhet", unit: "Enhet", room: "Rum", resident: "Boende",
      lastSeen: "Senast hörd", neverSince: "aldrig sedan hubben startade", heardBefore: "inte sedan omstart; senast",
      battery: "Batteri", batteryUnknown: "okänt", batteryNone: "ingen batterinivå i meddelandena (nätdriven?)",
      batteryFrom: "rapporterat", tamperYes: "ja, höljet öppnat eller enheten flyttad", state: "Senaste läge",
      supervised: "Larmar om tyst i", atMost: "högst", sAgo: "s sedan", minAgo: "min sedan", hAgo: "tim sedan", dAgo: "dygn sedan",
      offlineCount: "Larmenheter utan kontakt", noContact: "Ingen kontakt med hubben", forbidden: "Din roll får inte se enhetsstatus",
      error: "Fel", updated: "Uppdaterad", malformed: "felaktiga", unmapped: "okända", unsupported: "ej lästa",
      driverState: { running: "i drift", skipped: "hoppades över (hårdvaran saknas)", failed: "fel", stopped: "stoppad" },
      devState: { open: "öppen", closed: "stängd", pressed: "knappen tryckt", occupied: "upptagen / rörelse", empty: "tom / ingen rörelse",
        motion: "rörelse", tamper: "sabotage", fall: "fall", smoke: "rök", water_leak: "vatten", gas: "gas", carbon_monoxide: "kolmonoxid" },
      types: {
        "0003": "Larmknapp", "0004": "Väggknapp", "0005": "Fallarm", "0012": "Sänglarm", "0013": "Larmmatta", "0014": "Dörrlarm",
        "0015": "Passagelarm", "0018": "Rörelsevakt", "0032": "Larmenhet", "0044": "Stollarm", "0051": "GPS-larm",
        V001: "Brandvarnare", V002: "Vattenlarm", V003: "Gasvarnare",
      },
      unknownType: "Okänd enhetstyp", of: "av", h: "tim", min: "min", s: "s", locale: "sv-SE",
    },
    en: {
      heading: "Device health", title: "Vaka – device health", other: "Svenska", otherLang: "sv",
      loginFirst: "Log in first in", comeBack: ", then come back here.", summary: "Summary",
      gateways: "Gateways", devices: "Devices", order: "Silent, never heard and low battery first.",
      status: {
        silent: "Silent", never_heard: "Never heard – not paired?", not_heard_since_restart: "Not heard since restart",
        low_battery: "Low battery", tamper: "Tamper", ok: "OK", offline: "No contact", online: "Running", degraded: "Problem",
      },
      lastBeat: "Last sign of life", spool: "Events waiting (queue)", dropped: "Events dropped", drivers: "Drivers",
      noReport: "No health report yet", report: "Health report",
      where: "Where", site: "Area", gateway: "Gateway", unit: "Unit", room: "Room", resident: "Resident",
      lastSeen: "Last heard", neverSince: "never since the hub started", heardBefore: "not since the restart; last",
      battery: "Battery", batteryUnknown: "unknown", batteryNone: "no battery level in its messages (mains powered?)",
      batteryFrom: "reported", tamperYes: "yes, casing opened or device moved", state: "Last state",
      supervised: "Alarms when silent for", atMost: "at most", sAgo: "s ago", minAgo: "min ago", hAgo: "h ago", dAgo: "days ago",
      offlineCount: "Gateways without contact", noContact: "No contact with the hub", forbidden: "Your role may not see device health",
      error: "Error", updated: "Updated", malformed: "malformed", unmapped: "unknown", unsupported: "not read",
      driverState: { running: "running", skipped: "skipped (no hardware)", failed: "failed", stopped: "stopped" },
      devState: { open: "open", closed: "closed", pressed: "button pressed", occupied: "occupied / motion", empty: "empty / no motion",
        motion: "motion", tamper: "tamper", fall: "fall", smoke: "smoke", water_leak: "water", gas: "gas", carbon_monoxide: "carbon monoxide" },
      types: {
        "0003": "Call button", "0004": "Wall button", "0005": "Fall detector", "0012": "Bed sensor", "0013": "Floor mat sensor",
        "0014": "Door sensor", "0015": "Exit sensor", "0018": "Motion sensor", "0032": "Gateway", "0044": "Chair sensor",
        "0051": "GPS tracker", V001: "Smoke detector", V002: "Water leak detector", V003: "Gas detector",
      },
      unknownType: "Unknown device type", of: "of", h: "h", min: "min", s: "s", locale: "en-GB",
    },
  };
  let lang = "sv";
  try { if (localStorage.getItem("vaka-lang") === "en") lang = "en"; } catch (e) { /* private mode */ }
  let last = null;

  function t() { return T[lang]; }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // A Go duration ("30m0s", "2h0m0s", "1h30m0s", "45s") in words.
  function duration(s) {
    const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s || "");
    if (!m || s === "") return "";
    const h = +(m[1] || 0), min = +(m[2] || 0), sec = Math.round(+(m[3] || 0));
    const parts = [];
    if (h) parts.push(h + " " + t().h);
    if (min) parts.push(min + " " + t().min);
    if (sec || parts.length === 0) parts.push(sec + " " + t().s);
    return t().atMost + " " + parts.join(" ");
  }

  function ago(ts) {
    if (!ts) return "";
    const d = new Date(ts);
    if (isNaN(d)) return "";
    const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
    let rel;
    if (s < 90) rel = s + " " + t().sAgo;
    else if (s < 5400) rel = Math.round(s / 60) + " " + t().minAgo;
    else if (s < 172800) rel = Math.round(s / 3600) + " " + t().hAgo;
    else rel = Math.round(s / 86400) + " " + t().dAgo;
    return d.toLocaleString(t().locale, { dateStyle: "short", timeStyle: "short" }) + " (" + rel + ")";
  }

  function row(dl, label, value) {
    dl.appendChild(el("dt", "", label));
    dl.appendChild(el("dd", "", value));
  }

  function card(title, status) {
    const li = el("li", "card st-" + status);
    li.dataset.status = status;
    const h = el("div", "title", title);
    h.appendChild(el("span", "badge st-" + status, t().status[status] || status));
    li.appendChild(h);
    const dl = el("dl");
    li.appendChild(dl);
    return { li: li, dl: dl };
  }

  function gatewayStatus(g) {
    if (!g.online) return "offline";
    const r = g.report;
    if (r && ((r.drivers || []).some(function (d) {
      return d.state === "failed" || (d.problems || []).length > 0;
    }) || r.spool > 0)) return "degraded";
    return "online";
  }

  function renderGateways(list) {
    const ul = document.getElementById("gateways");
    ul.replaceChildren();
    for (const g of list) {
      const c = card(t().gateway + " " + g.gateway + " · " + t().site + " " + g.site, gatewayStatus(g));
      row(c.dl, t().lastBeat, ago(g.last_beat) || t().neverSince);
      const r = g.report;
      if (r) {
        row(c.dl, t().spool, String(r.spool || 0));
        row(c.dl, t().dropped, String(r.dropped || 0));
        const drivers = el("ul", "drivers");
        for (const d of r.drivers || []) {
          const counts = [];
          if (d.malformed) counts.push(t().malformed + " " + d.malformed);
          if (d.unmapped) counts.push(t().unmapped + " " + d.unmapped);
          if (d.unsupported) counts.push(t().unsupported + " " + d.unsupported);
          const li = el("li", "", d.name + ": " + (t().driverState[d.state] || d.state) + (d.err ? " – " + d.err : "") +
            (counts.length ? " (" + counts.join(", ") + ")" : ""));
          // The gateway's own notes (problems, unknown words) stay as sent.
          const more = (d.problems || []).concat(d.words || []);
          if (more.length > 0) {
            const sub = el("ul", "driver-notes");
            for (const m of more) sub.appendChild(el("li", "", m));
            li.appendChild(sub);
          }
          drivers.appendChild(li);
        }
        if (drivers.childElementCount > 0) {
          c.dl.appendChild(el("dt", "", t().drivers));
          const dd = el("dd");
          dd.appendChild(drivers);
          c.dl.appendChild(dd);
        }
      } else {
        row(c.dl, t().report, t().noReport);
      }
      ul.appendChild(c.li);
    }
  }

  function battery(d) {
    if (d.battery >= 0) {
      return d.battery + " %" + (d.battery_at ? " (" + t().batteryFrom + " " + ago(d.battery_at) + ")" : "");
    }
    // Heard, but never with a level: a mains-powered device, most likely.
    if (!d.never_heard || d.heard_before_restart) return t().batteryNone;
    return t().batteryUnknown;
  }

  function renderDevices(list) {
    const ul = document.getElementById("devices");
    ul.replaceChildren();
    for (const d of list) {
      const type = t().types[d.dty] || t().unknownType;
      const c = card(type + " · " + d.device, d.status);
      c.li.dataset.device = d.device;
      const where = [t().gateway + " " + d.gateway];
      if (d.unit) where.push(t().unit + " " + d.unit);
      if (d.room) where.push(t().room + " " + d.room);
      row(c.dl, t().where, where.join(" · "));
      if (d.resident) row(c.dl, t().resident, d.resident);
      let seen = ago(d.last_seen);
      if (d.never_heard) seen = d.heard_before_restart ? t().heardBefore + " " + ago(d.heard_before_restart) : t().neverSince;
      row(c.dl, t().lastSeen, seen);
      row(c.dl, t().battery, battery(d));
      if (d.tamper) row(c.dl, t().status.tamper, t().tamperYes);
      if (d.state) row(c.dl, t().state, t().devState[d.state] || d.state);
      if (d.supervised) row(c.dl, t().supervised, duration(d.supervised));
      ul.appendChild(c.li);
    }
  }

  function renderSummary(data) {
    const s = document.getElementById("summary");
    s.replaceChildren();
    const count = {};
    for (const d of data.devices) count[d.status] = (count[d.status] || 0) + 1;
    const off = data.gateways.filter(function (g) { return !g.online; }).length;
    s.appendChild(el("span", "pill", t().offlineCount + ": " + off + " " + t().of + " " + data.gateways.length));
    for (const k of ["silent", "never_heard", "not_heard_since_restart", "low_battery", "tamper", "ok"]) {
      if (k === "not_heard_since_restart" && !count[k]) continue;
      s.appendChild(el("span", "pill", t().status[k] + ": " + (count[k] || 0)));
    }
  }

  function show(id, text) {
    const e = document.getElementById(id);
    if (text === null) { e.hidden = true; return; }
    if (text !== undefined) e.textContent = text;
    e.hidden = false;
  }

  // The page's fixed words in the chosen language.
  function applyLang() {
    document.documentElement.lang = lang;
    document.title = t().title;
    for (const e of document.querySelectorAll("[data-t]")) e.textContent = t()[e.dataset.t];
    for (const e of document.querySelectorAll("[data-t-label]")) e.setAttribute("aria-label", t()[e.dataset.tLabel]);
    const b = document.getElementById("lang");
    b.textContent = t().other;
    b.lang = t().otherLang;
    if (last) render(last);
  }

  function render(data) {
    renderSummary(data);
    renderGateways(data.gateways);
    renderDevices(data.devices);
    document.getElementById("updated").textContent = t().updated + " " + new Date().toLocaleTimeString(t().locale);
  }

  async function load() {
    let resp;
    try {
      resp = await fetch("/api/v1/devices", { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) {
      show("error", t().noContact);
      return;
    }
    if (resp.status === 401) { show("login"); show("error", null); return; }
    if (resp.status === 403) { show("error", t().forbidden); return; }
    if (!resp.ok) { show("error", t().error + " " + resp.status); return; }
    const data = await resp.json();
    show("error", null);
    show("login", null);
    data.gateways = data.gateways || [];
    data.devices = data.devices || [];
    last = data;
    render(data);
    document.body.dataset.loaded = "true";
  }

  document.getElementById("lang").addEventListener("click", function () {
    lang = lang === "sv" ? "en" : "sv";
    try { localStorage.setItem("vaka-lang", lang); } catch (e) { /* private mode */ }
    applyLang();
  });
  applyLang();
  load();
  setInterval(load, 15000);
})();
