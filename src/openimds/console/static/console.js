// openimds console: the little the pages need beyond htmx. No inline script anywhere
// (the Content-Security-Policy forbids it), no polling: live parts are Server-Sent Events.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // Every htmx change carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // Confirmation before destructive buttons (data-confirm), with or without htmx.
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    const question = button && button.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  // NotBefore countdowns, from the page's own clock: no request.
  function countdowns() {
    const now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach((el) => {
      const left = Math.round((Date.parse(el.getAttribute("datetime")) - now) / 1000);
      el.textContent = left > 0 ? `in ${format(left)}` : `${format(-left)} ago`;
    });
  }
  function format(s) {
    if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${s} s`;
  }

  function stream(url, handlers, stateEl) {
    const source = new EventSource(url);
    source.onopen = () => { if (stateEl) stateEl.textContent = "Live."; };
    source.onerror = () => { if (stateEl) stateEl.textContent = "Reconnecting…"; };
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handle(event.data));
    }
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  // Live requests: the server renders each row; newest on top, at most 500 kept.
  function liveRequests() {
    const table = document.getElementById("live");
    if (!table) return;
    const rows = document.getElementById("live-rows");
    stream(table.dataset.stream, {
      request: (html) => {
        rows.insertAdjacentHTML("afterbegin", html);
        while (rows.rows.length > 500) rows.deleteRow(-1);
      },
    }, document.getElementById("live-state"));
  }

  // The events timeline: the server sends the whole fragment when it changes.
  function timeline() {
    const box = document.getElementById("timeline");
    if (!box) return;
    stream(box.dataset.stream, {
      timeline: (html) => {
        const focused = document.activeElement && document.activeElement.closest("#timeline");
        if (focused) return; // never pull a button from under the keyboard
        box.innerHTML = html;
        countdowns();
      },
    }, document.getElementById("timeline-state"));
  }

  // Charts: the last 15 minutes once, then one point a second pushed by the server.
  async function charts() {
    const box = document.getElementById("charts");
    if (!box || typeof uPlot === "undefined") return;
    const response = await fetch(box.dataset.series, { credentials: "same-origin" });
    if (!response.ok) return;
    const series = await response.json();
    const routes = Object.keys(series.routes).sort();
    const times = series.requests.map((_, i) => series.end - (series.requests.length - 1 - i));
    const data = {
      routes: [times, ...routes.map((r) => series.routes[r])],
      latency: [times, series.p50_ms, series.p99_ms],
      throttled: [times, series.throttled],
    };
    // Each chart as wide as its own figure (three side by side, or one under another).
    const width = (el) => Math.max(240, el.parentElement.clientWidth - 16);
    const palette = ["#1f6feb", "#8250df", "#1a7f37", "#bf3989", "#9a6700", "#0a3069"];
    const make = (id, labels, rows) => {
      const el = document.getElementById(id);
      return new uPlot({
        width: width(el), height: 180,
        series: [{}, ...labels.map((label, i) => ({ label, stroke: palette[i % palette.length], width: 1.5 }))],
        axes: [{ space: 60 }, { size: 50 }],
      }, rows, el);
    };
    const plots = {
      routes: make("chart-routes", routes, data.routes),
      latency: make("chart-latency", ["p50", "p99"], data.latency),
      throttled: make("chart-throttled", ["429"], data.throttled),
    };
    const keep = series.requests.length;
    function push(rows, values) {
      rows.forEach((column, i) => { column.push(values[i]); if (column.length > keep) column.shift(); });
    }
    stream(box.dataset.stream, {
      series: (text) => {
        const point = JSON.parse(text);
        const n = point.requests.length;
        for (let i = 0; i < n; i++) {
          const t = point.end - (n - 1 - i);
          if (t <= data.routes[0][data.routes[0].length - 1]) continue;
          const perRoute = routes.map((r) => (point.routes[r] || [])[i] ?? 0);
          push(data.routes, [t, ...perRoute]);
          push(data.latency, [t, point.p50_ms[i], point.p99_ms[i]]);
          push(data.throttled, [t, point.throttled[i]]);
        }
        plots.routes.setData(data.routes);
        plots.latency.setData(data.latency);
        plots.throttled.setData(data.throttled);
      },
    });
    window.addEventListener("resize", () => {
      for (const plot of Object.values(plots)) plot.setSize({ width: width(plot.root.parentElement), height: 180 });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    countdowns();
    setInterval(countdowns, 1000);
    liveRequests();
    timeline();
    charts();
  });
})();
