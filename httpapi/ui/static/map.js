// Vaka map: the latest position and the track of a wander or geofence
// alarm, drawn as inline SVG with north up, a scale bar and the safe area
// (geofence circle). No library and no outside calls: tiles are drawn only
// when the hub is configured with a tile URL (http.map_tiles, on the
// municipality's own network), or the unit's own floor plan when it has one.
//
// Usage: window.VakaMap.render(containerElement, alarm) — alarm as the API
// sends it: alarm.pos, alarm.track (oldest first), alarm.where.geofence,
// alarm.where.floor_plan, alarm.where.map_tiles. Call it again with the
// updated alarm to redraw (the track grows while the alarm is open).
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var W = 320, H = 240, PAD = 24, TILE = 256;
  var EARTH = 6378137; // metres, the Web Mercator sphere

  // Web Mercator at zoom 0: the world is 256 × 256 units.
  function project(lat, lon) {
    var s = Math.sin(Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180);
    return {
      x: (lon + 180) / 360 * TILE,
      y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE
    };
  }

  // Metres per zoom-0 unit at latitude lat.
  function metresPerUnit(lat) {
    return 2 * Math.PI * EARTH * Math.cos(lat * Math.PI / 180) / TILE;
  }

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVGNS, name);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k])); }
    if (parent) parent.appendChild(e);
    return e;
  }

  function round(v) { return Math.round(v * 100) / 100; }

  // A round length for the scale bar, at most max metres.
  function niceLength(max) {
    var p = Math.pow(10, Math.floor(Math.log(max) / Math.LN10));
    var steps = [5, 2, 1];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * p <= max) return steps[i] * p; }
    return p;
  }

  function lang() {
    var l = (document.documentElement.getAttribute('lang') || 'sv').slice(0, 2);
    return l === 'en' ? 'en' : 'sv';
  }

  var TEXT = {
    sv: { title: 'Karta: senaste position och spår', north: 'N', latest: 'Senaste position', area: 'Hemområde', none: 'Ingen position ännu', old: 'Kan vara gammal' },
    en: { title: 'Map: latest position and track', north: 'N', latest: 'Latest position', area: 'Home area', none: 'No position yet', old: 'May be old' }
  };

  function valid(p) { return p && isFinite(p.lat) && isFinite(p.lon) && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180; }

  function render(container, alarm) {
    if (!container) return null;
    var t = TEXT[lang()];
    var where = (alarm && alarm.where) || {};
    var track = ((alarm && alarm.track) || []).filter(valid);
    var pos = alarm && valid(alarm.pos) ? alarm.pos : (track.length ? track[track.length - 1] : null);
    var fence = where.geofence && valid(where.geofence) ? where.geofence : null;
    var plan = where.floor_plan || null;
    while (container.firstChild) container.removeChild(container.firstChild);
    if (!pos && !fence) {
      var p = document.createElement('p');
      p.className = 'vaka-map-empty';
      p.textContent = t.none;
      container.appendChild(p);
      return null;
    }

    // Bounds in zoom-0 units over everything drawn.
    var pts = track.slice();
    if (pos && (!track.length || track[track.length - 1].lat !== pos.lat || track[track.length - 1].lon !== pos.lon)) pts.push(pos);
    var lat0 = pos ? pos.lat : fence.lat;
    var mpu = metresPerUnit(lat0);
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    function grow(x, y) { minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y); }
    pts.forEach(function (q) { var m = project(q.lat, q.lon); grow(m.x, m.y); });
    if (fence) {
      var c = project(fence.lat, fence.lon), r = fence.radius_m / mpu;
      grow(c.x - r, c.y - r); grow(c.x + r, c.y + r);
    }
    // At least 100 m across, so one point is not drawn at a zoom of 1:1.
    var minSpan = 100 / mpu;
    var cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
    var spanX = Math.max(maxX - minX, minSpan), spanY = Math.max(maxY - minY, minSpan);
    var scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY); // SVG units per zoom-0 unit
    function toSvg(lat, lon) {
      var m = project(lat, lon);
      return { x: round(W / 2 + (m.x - cx) * scale), y: round(H / 2 + (m.y - cy) * scale) };
    }

    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img', 'class': 'vaka-map', 'aria-label': t.title });
    el('rect', { x: 0, y: 0, width: W, height: H, fill: '#eef2f5' }, svg);

    // Tiles from the configured server only (none by default).
    if (where.map_tiles && /^https?:\/\//.test(where.map_tiles)) {
      // Tile pixels about one screen pixel: the SVG's drawn width times
      // the device's pixel ratio.
      var pxPerUnit = Math.max(1, (container.clientWidth || W) / W * (window.devicePixelRatio || 1));
      var z = Math.max(0, Math.min(19, Math.round(Math.log(scale * pxPerUnit) / Math.LN2)));
      var n = Math.pow(2, z), k = scale / n; // SVG units per tile pixel
      var left = cx - W / 2 / scale, top = cy - H / 2 / scale;
      var tx0 = Math.floor(left * n / TILE), ty0 = Math.floor(top * n / TILE);
      var tx1 = Math.floor((left + W / scale) * n / TILE), ty1 = Math.floor((top + H / scale) * n / TILE);
      var g = el('g', { 'class': 'vaka-map-tiles' }, svg);
      for (var tx = tx0; tx <= tx1 && tx - tx0 < 8; tx++) {
        for (var ty = ty0; ty <= ty1 && ty - ty0 < 8; ty++) {
          if (ty < 0 || ty >= n) continue;
          var wx = ((tx % n) + n) % n;
          var href = where.map_tiles.replace('{z}', z).replace('{x}', wx).replace('{y}', ty).replace('{s}', 'a');
          el('image', { href: href, x: round(W / 2 + (tx * TILE / n - cx) * scale), y: round(H / 2 + (ty * TILE / n - cy) * scale),
            width: round(TILE * k) + 0.5, height: round(TILE * k) + 0.5, preserveAspectRatio: 'none' }, g);
        }
      }
    }
    // The unit's own floor plan, stretched over the area it shows.
    if (plan && plan.url && plan.url.charAt(0) === '/') {
      var nw = toSvg(plan.north, plan.west), se = toSvg(plan.south, plan.east);
      el('image', { href: plan.url, 'class': 'vaka-map-floorplan', x: nw.x, y: nw.y, width: round(se.x - nw.x), height: round(se.y - nw.y), preserveAspectRatio: 'none' }, svg);
    }
    if (fence) {
      var fc = toSvg(fence.lat, fence.lon);
      var fr = el('circle', { 'class': 'vaka-map-geofence', cx: fc.x, cy: fc.y, r: round(fence.radius_m / mpu * scale),
        fill: 'rgba(21,101,192,0.12)', stroke: '#1565c0', 'stroke-width': 2, 'stroke-dasharray': '6 4' }, svg);
      el('title', {}, fr).textContent = t.area;
    }
    if (pts.length > 1) {
      el('polyline', { 'class': 'vaka-map-track', fill: 'none', stroke: '#b3261e', 'stroke-width': 2.5, 'stroke-linejoin': 'round',
        points: pts.map(function (q) { var s = toSvg(q.lat, q.lon); return s.x + ',' + s.y; }).join(' ') }, svg);
    }
    track.forEach(function (q, i) {
      var s = toSvg(q.lat, q.lon);
      el('circle', { 'class': 'vaka-map-point', 'data-i': i, cx: s.x, cy: s.y, r: 3, fill: '#b3261e' }, svg);
    });
    if (pos) {
      var ps = toSvg(pos.lat, pos.lon);
      var latest = el('circle', { 'class': 'vaka-map-pos', cx: ps.x, cy: ps.y, r: 8, fill: '#b3261e', stroke: '#fff', 'stroke-width': 3 }, svg);
      el('title', {}, latest).textContent = t.latest + (pos.last_known ? ' – ' + t.old : '');
      if (pos.acc > 0) {
        el('circle', { 'class': 'vaka-map-accuracy', cx: ps.x, cy: ps.y, r: round(pos.acc / mpu * scale), fill: 'none', stroke: '#b3261e', 'stroke-opacity': 0.5 }, svg);
      }
    }
    // North arrow: the map is always drawn north up.
    var na = el('g', { 'class': 'vaka-map-north', transform: 'translate(' + (W - 18) + ',10)' }, svg);
    el('path', { d: 'M0 18 L6 0 L12 18 L6 13 Z', fill: '#1b1f23' }, na);
    el('text', { x: 6, y: 30, 'text-anchor': 'middle', 'font-size': 11, 'font-weight': 700, fill: '#1b1f23' }, na).textContent = t.north;
    // Scale bar.
    var unitsPerMetre = scale / mpu;
    var len = niceLength((W / 3) / unitsPerMetre);
    var px = round(len * unitsPerMetre);
    var sb = el('g', { 'class': 'vaka-map-scale', 'data-metres': len, 'data-width': px, transform: 'translate(10,' + (H - 12) + ')' }, svg);
    el('rect', { x: -4, y: -16, width: px + 8, height: 20, fill: 'rgba(255,255,255,0.85)' }, sb);
    el('path', { d: 'M0 -4 V0 H' + px + ' V-4', fill: 'none', stroke: '#1b1f23', 'stroke-width': 2 }, sb);
    el('text', { x: 0, y: -6, 'font-size': 11, fill: '#1b1f23' }, sb).textContent = len >= 1000 ? (len / 1000) + ' km' : len + ' m';
    container.appendChild(svg);
    return svg;
  }

  window.VakaMap = { render: render, _project: project };
})();
