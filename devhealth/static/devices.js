// Vaka device-health page: reads GET /api/v1/devices every 15 s and lists
// gateways and devices, trouble first (the API sorts devices). Built with
// DOM calls and textContent only: nothing from the API becomes markup.
"use strict";

(function () {
  const STATUS = {
    silent: "Tyst / Silent",
    never_heard: "Aldrig hörd (ej parkopplad?) / Never heard (not paired?)",
    low_battery: "Lågt batteri / Low battery",
    tamper: "Sabotage / Tamper",
    ok: "OK",
    offline: "Offline",
    online: "Online",
    degraded: "Problem / Degraded",
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function ago(ts) {
    if (!ts) return "–";
    const t = new Date(ts);
    if (isNaN(t)) return "–";
    const s = Math.round((Date.now() - t.getTime()) / 1000);
    let rel;
    if (s < 90) rel = s + " s";
    else if (s < 5400) rel = Math.round(s / 60) + " min";
    else if (s < 172800) rel = Math.round(s / 3600) + " h";
    else rel = Math.round(s / 86400) + " d";
    return t.toLocaleString("sv-SE") + " (" + rel + ")";
  }

  function row(dl, label, value) {
    dl.appendChild(el("dt", "", label));
    dl.appendChild(el("dd", "", value));
  }

  function card(title, status) {
    const li = el("li", "card st-" + status);
    const h = el("div", "title", title);
    h.appendChild(el("span", "badge st-" + status, STATUS[status] || status));
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
      const c = card(g.site + " / " + g.gateway, gatewayStatus(g));
      row(c.dl, "Senaste hjärtslag / Last heartbeat", ago(g.last_beat));
      const r = g.report;
      if (r) {
        row(c.dl, "Kö (spool) / Spool", String(r.spool || 0));
        row(c.dl, "Tappade / Dropped", String(r.dropped || 0));
        const drivers = el("ul", "drivers");
        for (const d of r.drivers || []) {
          // What the driver could not use, and devices that cannot work
          // as configured (a call button whose words are not presses).
          const counts = [];
          if (d.malformed) counts.push("felaktiga / malformed " + d.malformed);
          if (d.unmapped) counts.push("okända / unmapped " + d.unmapped);
          if (d.unsupported) counts.push("ej lästa / unsupported " + d.unsupported);
          const li = el("li", "", d.name + ": " + d.state + (d.err ? " – " + d.err : "") +
            (counts.length ? " (" + counts.join(", ") + ")" : ""));
          const more = (d.problems || []).concat(d.words || []);
          if (more.length > 0) {
            const sub = el("ul", "driver-notes");
            for (const m of more) sub.appendChild(el("li", "", m));
            li.appendChild(sub);
          }
          drivers.appendChild(li);
        }
        if (drivers.childElementCount > 0) {
          c.dl.appendChild(el("dt", "", "Drivrutiner / Drivers"));
          const dd = el("dd");
          dd.appendChild(drivers);
          c.dl.appendChild(dd);
        }
      } else {
        row(c.dl, "Hälsorapport / Health report", "ingen / none");
      }
      ul.appendChild(c.li);
    }
  }

  function renderDevices(list) {
    const ul = document.getElementById("devices");
    ul.replaceChildren();
    for (const d of list) {
      const c = card(d.device + " (" + d.type + ")", d.status);
      row(c.dl, "Plats / Where", [d.site, d.gateway, d.unit, d.room ? "rum/room " + d.room : ""].filter(Boolean).join(" · "));
      if (d.resident) row(c.dl, "Boende / Resident", d.resident);
      row(c.dl, "Senast hörd / Last seen", d.never_heard ? "aldrig sedan start / never since start" : ago(d.last_seen));
      row(c.dl, "Batteri / Battery", d.battery >= 0 ? d.battery + " %" : "okänt / unknown");
      if (d.tamper) row(c.dl, "Sabotage / Tamper", "ja / yes");
      if (d.state) row(c.dl, "Läge / State", d.state);
      if (d.supervised) row(c.dl, "Övervakas / Supervised", "max " + d.supervised);
      ul.appendChild(c.li);
    }
  }

  function renderSummary(data) {
    const s = document.getElementById("summary");
    s.replaceChildren();
    const count = {};
    for (const d of data.devices) count[d.status] = (count[d.status] || 0) + 1;
    const off = data.gateways.filter(function (g) { return !g.online; }).length;
    s.appendChild(el("span", "pill", "Gateways offline: " + off + " / " + data.gateways.length));
    for (const k of ["silent", "never_heard", "low_battery", "tamper", "ok"]) {
      s.appendChild(el("span", "pill", STATUS[k].split(" / ")[0] + ": " + (count[k] || 0)));
    }
  }

  function show(id, text) {
    const e = document.getElementById(id);
    if (text === null) { e.hidden = true; return; }
    if (text !== undefined) e.textContent = text;
    e.hidden = false;
  }

  async function load() {
    let resp;
    try {
      resp = await fetch("/api/v1/devices", { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) {
      show("error", "Ingen kontakt med hubben / No contact with the hub");
      return;
    }
    if (resp.status === 401) { show("login"); show("error", null); return; }
    if (resp.status === 403) { show("error", "Din roll får inte se enhetsstatus / Your role may not see device health"); return; }
    if (!resp.ok) { show("error", "Fel / Error " + resp.status); return; }
    const data = await resp.json();
    show("error", null);
    show("login", null);
    data.gateways = data.gateways || [];
    data.devices = data.devices || [];
    renderSummary(data);
    renderGateways(data.gateways);
    renderDevices(data.devices);
    document.getElementById("updated").textContent = "Uppdaterad / Updated " + new Date().toLocaleTimeString("sv-SE");
  }

  load();
  setInterval(load, 15000);
})();
