// The organizers' dashboard: one page, read-only, that shows a petition's
// count over time (uPlot), by country on a map (d3-geo over world-atlas),
// by event, its pending confirmations and suspicion signals, and the embed
// snippet, kept live by the count stream. The token stays in sessionStorage
// (this tab only), is never put in an address, and goes only to this
// service, in an Authorization header.
(() => {
  "use strict";
  const KEY = "undersigned.token";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const api = (path) => new URL(`../v1/${path}`, location.href);
  const number = new Intl.NumberFormat();
  const regions = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
  const countryName = (code) => {
    try { return (regions && regions.of(code)) || code; } catch (_) { return code; }
  };
  let token = sessionStorage.getItem(KEY);
  let stream = null;
  let polling = null;
  let chart = null;
  let slug = null;
  let events = new Map();
  let mapReady = null;
  let redraw = null;

  async function call(path) {
    const r = await fetch(api(path), { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (r.status === 401) {
      logout("That token was refused (revoked, expired or mistyped). Log in again.");
      throw new Error("unauthorized");
    }
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }
  async function open(path) {
    const r = await fetch(api(path), { cache: "no-store" });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    token = null;
    unwatch();
    $("board").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
  }
  $("logout").addEventListener("click", () => logout(""));
  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    try {
      await start();
      sessionStorage.setItem(KEY, token);
    } catch (e) {
      if (token) $("login-error").textContent = `The dashboard could not load: ${e.message}`;
    }
  });

  async function start() {
    const { petitions } = await call("petitions");
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
    $("login-error").textContent = "";
    const select = $("petition");
    select.replaceChildren(...petitions.map((p) => new Option(`${p.title} (${p.slug})`, p.slug)));
    if (!petitions.length) {
      $("live").textContent = "This token has no petition to show.";
      return;
    }
    await show(select.value);
  }
  $("petition").addEventListener("change", () => show($("petition").value));
  $("interval").addEventListener("change", () => drawChart());

  // Stops following the count, by stream or by polling.
  function unwatch() {
    if (stream) stream.close();
    stream = null;
    clearInterval(polling);
    polling = null;
  }

  async function show(which) {
    slug = which;
    unwatch();
    const [count, listed, signals] = await Promise.all([
      open(`petitions/${slug}/count`),
      call(`petitions/${slug}/events`).catch(() => ({ events: [] })),
      call(`petitions/${slug}/signals`).catch(() => null),
    ]);
    events = new Map(listed.events.map((e) => [e.id, e]));
    snippet();
    showSignals(signals);
    await Promise.all([showCount(count), drawChart()]);
    stream = new EventSource(api(`petitions/${slug}/count/stream`));
    stream.addEventListener("count", (e) => {
      showCount(JSON.parse(e.data));
      // The chart follows, redrawn at most every 5 s.
      if (redraw === null) redraw = setTimeout(() => { redraw = null; drawChart(); }, 5000);
    });
    // Refused (the service's or this address's streams are all taken): the
    // count is read every 10 s instead, until another petition is opened.
    const refused = stream;
    refused.addEventListener("error", () => {
      if (refused.readyState !== EventSource.CLOSED || refused !== stream) return;
      stream = null;
      polling = setInterval(() => open(`petitions/${slug}/count`).then(showCount).catch(() => {}), 10000);
    });
  }

  async function showCount(count) {
    $("total").textContent = number.format(count.count);
    $("goal").textContent = number.format(count.goal);
    $("people").textContent = number.format(count.people);
    $("organizations").textContent = number.format(count.organizations);
    $("pending").textContent = number.format(count.pending);
    $("live").textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
    rows($("countries"), Object.entries(count.by_country).sort((a, b) => b[1] - a[1])
      .map(([code, n]) => [countryName(code), number.format(n)]));
    rows($("events"), Object.entries(count.by_event).sort((a, b) => b[1] - a[1]).map(([id, n]) => {
      const e = events.get(id);
      return [e ? e.name : id, e ? countryName(e.country) : "", number.format(n)];
    }));
    await shade(count.by_country);
  }

  function rows(table, cells) {
    table.tBodies[0].replaceChildren(...cells.map((row) => {
      const tr = document.createElement("tr");
      for (const cell of row) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.append(td);
      }
      return tr;
    }));
  }

  function showSignals(signals) {
    const list = signals
      ? [...signals.addresses.map((s) => [s.address, s.signatures]), ...signals.email_domains.map((s) => [s.email_domain, s.signatures])]
      : [];
    rows($("signals"), list.sort((a, b) => b[1] - a[1]).map(([key, n]) => [key, number.format(n)]));
  }

  function snippet() {
    const widget = new URL("../widget.js", location.href).href;
    $("snippet").textContent = `<script src="${widget}" data-petition="${slug}" async></script>`;
    const page = new URL(`../p/${slug}`, location.href).href;
    $("page-link").href = page;
    $("page-link").textContent = page;
  }

  async function drawChart() {
    const interval = $("interval").value;
    const history = await open(`petitions/${slug}/history?interval=${interval}`);
    // From the count at the range's start, through each change, to now.
    const xs = history.points.map((p) => Date.parse(p.at) / 1000);
    const ys = history.points.map((p) => p.total);
    const since = Date.parse(history.since) / 1000;
    if (!xs.length || xs[0] > since) {
      xs.unshift(since);
      ys.unshift(history.start.total);
    }
    const now = Date.now() / 1000;
    if (xs[xs.length - 1] < now) {
      xs.push(now);
      ys.push(ys[ys.length - 1]);
    }
    const box = $("chart");
    box.dataset.points = String(history.points.length);
    box.dataset.last = String(ys[ys.length - 1]);
    box.setAttribute("aria-label", `The count over time, by ${interval}: ${ys[ys.length - 1]} at the end`);
    const data = [xs, ys];
    if (chart) {
      chart.setData(data);
      return;
    }
    chart = new uPlot({
      width: Math.max(320, box.clientWidth || 800),
      height: 240,
      scales: { x: { time: true } },
      series: [{}, { label: "Signatures", stroke: "#1a4d8f", fill: "rgba(26, 77, 143, 0.12)", width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
      axes: [{}, { size: 70 }],
      legend: { show: true },
    }, data, box);
  }

  function loadMap() {
    if (mapReady) return mapReady;
    mapReady = (async () => {
      const [topology, codes] = await Promise.all([
        fetch("vendor/countries-110m.json").then((r) => r.json()),
        fetch("vendor/iso-3166-codes.json").then((r) => r.json()),
      ]);
      const alpha2 = new Map(codes.map(([a2, , numeric]) => [numeric, a2]));
      const features = topojson.feature(topology, topology.objects.countries).features;
      const projection = d3.geoNaturalEarth1().fitSize([960, 480], { type: "Sphere" });
      const path = d3.geoPath(projection);
      const svg = $("map");
      for (const feature of features) {
        const shape = document.createElementNS(SVG, "path");
        shape.setAttribute("d", path(feature) || "");
        shape.dataset.country = alpha2.get(String(feature.id).padStart(3, "0")) || "";
        shape.append(document.createElementNS(SVG, "title"));
        svg.append(shape);
      }
    })();
    return mapReady;
  }

  async function shade(byCountry) {
    await loadMap();
    const most = Math.max(1, ...Object.values(byCountry));
    let shaded = 0;
    for (const shape of $("map").querySelectorAll("path")) {
      const code = shape.dataset.country;
      const n = byCountry[code] || 0;
      // From a pale to a deep blue, by the square root of the share.
      const t = n ? Math.sqrt(n / most) : 0;
      shape.setAttribute("fill", n ? `rgb(${Math.round(198 - 172 * t)}, ${Math.round(219 - 142 * t)}, ${Math.round(239 - 96 * t)})` : "#d9d9d4");
      shape.firstChild.textContent = `${countryName(code)}: ${number.format(n)}`;
      shape.dataset.count = String(n);
      if (n) shaded += 1;
    }
    $("map").dataset.shaded = String(shaded);
  }

  if (token) start().catch(() => {});
})();
