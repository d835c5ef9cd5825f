// The gcmc-jobs dashboard: reads and acts through the admin JSON API with the token kept
// in this tab's sessionStorage. No framework; every value is inserted as text, never HTML.
"use strict";
(function () {
  const base = document.body.dataset.base || "";
  const KEY = "gcmc-jobs-token";
  const $ = (id) => document.getElementById(id);
  let timer = null;
  // The live-messages page shown: its cursor (null: the first page).
  let liveCursor = null;
  let liveNext = null;
  // Tenant id -> name (from /api/overview), for the runs, schedules and live messages.
  const tenantNames = new Map();
  // Dead letters whose traceback is open, and the tracebacks fetched (by id).
  const openTracebacks = new Set();
  const tracebacks = new Map();
  // The uPlot charts, exposed for the browser tests (their .data is what is drawn).
  const charts = (window.gcmcCharts = {});

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 || response.status === 403 || response.status === 503) {
      const body = await response.json().catch(() => ({}));
      signOut(body.detail || "signed out");
      throw new Error("unauthorized");
    }
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      const detail = Array.isArray(answer.detail)
        ? answer.detail.map((d) => d.msg).join("; ") : answer.detail;
      throw new Error(detail || response.statusText);
    }
    return response.json();
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text === null || text === undefined ? "-" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function button(td, label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await onClick(); } catch (e) { setStatus(e.message, true); }
      await refresh();
    });
    td.appendChild(b);
    return b;
  }

  function age(ms) {
    if (ms === null || ms === undefined) return "-";
    const s = ms / 1000;
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function when(iso) {
    return iso ? iso.replace("T", " ").replace(/\.\d+/, "") : null;
  }

  // Rebuild a table's rows; the control that had the keyboard focus in it (a button, a
  // traceback's summary) gets it back in its rebuilt row, so the refresh never drops a
  // keyboard user's place.
  function fill(id, rows, render) {
    const body = $(id).tBodies[0];
    const active = document.activeElement;
    let restore = null;
    if (active && active !== body && body.contains(active)) {
      const row = active.closest("tr");
      restore = { key: JSON.stringify(row.dataset), index: row.sectionRowIndex,
                  tag: active.tagName, text: active.textContent };
    }
    body.replaceChildren();
    for (const item of rows) render(body.insertRow(), item);
    if (restore) {
      const row = [...body.rows].find((r) => JSON.stringify(r.dataset) === restore.key && restore.key !== "{}")
        || body.rows[restore.index];
      const again = row && [...row.querySelectorAll(restore.tag)]
        .find((e) => e.textContent === restore.text);
      if (again) again.focus();
    }
  }

  function tenantName(id) {
    if (id === null || id === undefined) return null;
    const name = tenantNames.get(String(id));
    return name ? name : String(id);
  }

  function numberText(n) {
    return n === null || n === undefined ? null : Number(n).toLocaleString("en-US");
  }

  // A job run's stats as "key: value" lines (nested values as compact JSON).
  function statsList(td, stats) {
    const entries = Object.entries(stats || {});
    if (!entries.length) { td.textContent = "-"; return; }
    const dl = document.createElement("dl");
    dl.className = "stats";
    for (const [key, value] of entries) {
      const dt = document.createElement("dt");
      dt.textContent = key.replace(/_/g, " ");
      const dd = document.createElement("dd");
      dd.textContent = typeof value === "number" ? numberText(value)
        : typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
      dl.append(dt, dd);
    }
    td.appendChild(dl);
  }

  // A horizontal bar whose segments are proportional to counts (class = the segment's name).
  function stackedBar(td, parts) {
    td.className = "bar-cell";
    const bar = document.createElement("div");
    bar.className = "bar";
    const total = parts.reduce((sum, [, n]) => sum + n, 0);
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", parts.map(([name, n]) => n + " " + name).join(", "));
    for (const [name, n] of parts) {
      if (!n) continue;
      const span = document.createElement("span");
      span.className = "seg-" + name;
      span.dataset.count = n;
      span.style.width = (100 * n / total) + "%";
      span.title = n + " " + name;
      bar.appendChild(span);
    }
    td.appendChild(bar);
  }

  // --- charts (uPlot) --------------------------------------------------------------------

  const COLOURS = ["#1a5fb4", "#26a269", "#e66100", "#813d9c", "#986a44", "#c64600", "#5e5c64"];

  // The width of the chart's card less its padding (the card follows the window; the chart
  // element itself holds the drawn canvas, so it is not measured).
  function chartWidth(id) {
    const card = $(id).parentElement;
    const style = getComputedStyle(card);
    const inner = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.max(200, Math.floor(inner));
  }

  // xRange: the x scale's [min, max] (epoch seconds); by default the data's own.
  function drawChart(name, id, series, data, xRange) {
    const key = series.map((s) => s.label).join("|");
    let chart = charts[name];
    if (chart && chart.gcmcKey === key) {
      chart.setData(data);
      return;
    }
    if (chart) chart.destroy();
    chart = new uPlot(
      {
        width: chartWidth(id),
        height: 200,
        series: [{}, ...series],
        scales: {
          x: xRange ? { time: true, range: () => xRange() } : { time: true },
          y: { range: (u, min, max) => [0, Math.max(1, max)] },
        },
        axes: [{}, { size: 50 }],
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
      },
      data,
      $(id),
    );
    chart.gcmcKey = key;
    charts[name] = chart;
  }

  function renderActivity(a) {
    const total = (values) => values.reduce((sum, v) => sum + (v || 0), 0);
    // Bars, one a minute (at least 2 px wide, so a single busy minute shows); the failed
    // ones are part of the processed ones and are drawn over them.
    const bars = uPlot.paths.bars({ size: [0.9, Infinity, 2] });
    drawChart("throughput", "chart-throughput", [
      { label: "processed", stroke: "#1a5fb4", fill: "#1a5fb4", width: 0, paths: bars,
        points: { show: false } },
      { label: "failed", stroke: "#c01c28", fill: "#c01c28", width: 0, paths: bars,
        points: { show: false } },
    ], [a.minutes, a.processed, a.failed]);
    const reported = a.processed.filter((v) => v !== null).length;
    $("throughput-summary").textContent = reported
      ? numberText(total(a.processed)) + " processed, " + numberText(total(a.failed)) +
        " failed in the last 24 h (" + reported + (reported === 1 ? " minute" : " minutes") +
        " reported)"
      : "no worker has reported in the last 24 h";
    const queues = Object.keys(a.depth);
    drawChart(
      "depth", "chart-depth",
      queues.map((q, i) => ({
        label: q, stroke: COLOURS[i % COLOURS.length], width: 1.5,
        // a marker on each reported minute, so a lone report between gaps shows too
        points: { show: true, size: 3, fill: COLOURS[i % COLOURS.length] },
      })),
      [a.minutes, ...queues.map((q) => a.depth[q])],
    );
    $("depth-summary").textContent = queues.length
      ? "ready + delayed messages, as the workers last reported them each minute"
      : "no queue depth reported in the last 24 h";
  }

  // Resize the charts with their cards (window resized, layout reflowed).
  const resizeCharts = () => {
    for (const [name, id] of [
      ["throughput", "chart-throughput"], ["depth", "chart-depth"], ["trend", "chart-trend"],
    ]) {
      const chart = charts[name];
      const width = chartWidth(id);
      if (chart && chart.width !== width) chart.setSize({ width, height: 200 });
    }
  };
  window.addEventListener("resize", resizeCharts);
  if (window.ResizeObserver) {
    const observer = new ResizeObserver(resizeCharts);
    observer.observe($("chart-throughput").parentElement);
    observer.observe($("chart-depth").parentElement);
    observer.observe($("chart-trend").parentElement);
  }

  function renderOverview(overview) {
    const days = overview.trend.map((d) => Date.parse(d.day + "T00:00:00Z") / 1000);
    const point = (colour) => ({ show: true, size: 5, fill: colour });
    drawChart("trend", "chart-trend", [
      { label: "low", stroke: "#2e8540", width: 1.5, points: point("#2e8540") },
      { label: "medium", stroke: "#e5a50a", width: 1.5, points: point("#e5a50a") },
      { label: "high", stroke: "#c01c28", width: 1.5, points: point("#c01c28") },
    ], [days, ...["low", "medium", "high"].map((l) => overview.trend.map((d) => d[l]))],
    // always the last 90 days, so one day of snapshots is not stretched over years
    () => [Date.now() / 1000 - 90 * 86400, Date.now() / 1000 + 86400]);
    $("trend-summary").textContent = overview.trend.length
      ? overview.trend.length + (overview.trend.length === 1 ? " day" : " days") +
        " of compliance snapshots"
      : "no compliance snapshot in the last 90 days";
    for (const t of overview.risk) tenantNames.set(String(t.tenant_id), t.tenant);
    trendTenants(overview.risk);
    fill("risk", overview.risk, (row, t) => {
      row.dataset.tenant = t.tenant_id;
      cell(row, t.tenant || t.tenant_id);
      for (const level of ["low", "medium", "high"]) cell(row, numberText(t.levels[level]), "n " + level + "-count");
      stackedBar(row.insertCell(), ["low", "medium", "high"].map((l) => [l, t.levels[l] || 0]));
    });
    const kinds = new Map();
    for (const d of overview.email) {
      if (!kinds.has(d.kind)) kinds.set(d.kind, {});
      kinds.get(d.kind)[d.status] = d.count;
    }
    const statuses = ["sent", "queued", "failed", "suppressed"];
    fill("email", [...kinds.entries()], (row, [kind, counts]) => {
      row.dataset.kind = kind;
      cell(row, kind);
      for (const status of statuses) cell(row, numberText(counts[status] || 0), "n " + status + "-count");
      stackedBar(row.insertCell(), statuses.map((st) => [st, counts[st] || 0]));
    });
  }

  function megabytes(bytes) {
    return bytes === null || bytes === undefined ? null : (bytes / 1048576).toFixed(1);
  }

  function renderWorkers(health) {
    const workers = (health.checks.workers && health.checks.workers.workers) || [];
    fill("workers", workers, (row, w) => {
      const s = w.stats || {};
      row.dataset.pid = w.pid;
      cell(row, w.host);
      cell(row, w.pid, "n");
      cell(row, (w.queues || []).join(", "));
      cell(row, w.threads, "n");
      cell(row, s.busy, "n busy");
      cell(row, s.processed, "n processed");
      cell(row, s.failed, "n failed");
      cell(row, s.mean_ms, "n");
      cell(row, s.p95_ms, "n");
      cell(row, megabytes(s.rss_bytes), "n");
      cell(row, age(w.last_seen_ms_ago) + " ago");
    });
    const redis = health.checks.redis;
    const d = redis || {};
    if (d.used_memory_bytes === undefined) {
      $("redis").textContent = "Redis: " + (redis ? redis.detail : "-");
      return;
    }
    const keys = Object.entries(d.keys || {}).map(([db, k]) => db + " " + k.keys).join(", ");
    $("redis").textContent =
      "Redis: " + megabytes(d.used_memory_bytes) + " MB used of " +
      (d.maxmemory_bytes ? megabytes(d.maxmemory_bytes) + " MB" : "no limit") +
      "; evicted keys " + d.evicted_keys + "; clients " + d.connected_clients +
      "; keys " + (keys || "none") + " (" + redis.status + ")";
  }

  // The trend's tenant: "" (every tenant) or one id, as the query of /api/overview.
  function trendTenant() {
    const chosen = $("trend-tenant").value;
    return chosen ? "?tenant_id=" + encodeURIComponent(chosen) : "";
  }

  function trendTenants(risk) {
    const select = $("trend-tenant");
    const chosen = select.value;
    const ids = risk.map((t) => String(t.tenant_id));
    if ([...select.options].slice(1).map((o) => o.value).join() !== ids.join()) {
      select.replaceChildren(
        new Option("all tenants", ""),
        ...risk.map((t) => new Option(t.tenant || String(t.tenant_id), String(t.tenant_id))),
      );
      if (ids.includes(chosen)) select.value = chosen;
    }
  }

  function liveQueues(queues) {
    const select = $("live-queue");
    const chosen = select.value;
    const names = queues.map((q) => q.name);
    if ([...select.options].map((o) => o.value).join() !== names.join()) {
      select.replaceChildren(...names.map((name) => new Option(name, name)));
      if (names.includes(chosen)) select.value = chosen;
    }
    return select.value;
  }

  async function refreshLive(queue) {
    if (!queue) return;
    const params = new URLSearchParams({ limit: "50" });
    if ($("live-state").value) params.set("state", $("live-state").value);
    if (liveCursor) params.set("cursor", liveCursor);
    const path = "/api/queues/" + encodeURIComponent(queue) + "/messages";
    let page;
    try {
      page = await api("GET", path + "?" + params);
    } catch (e) {
      if (e.message === "unauthorized") throw e;
      $("live").tBodies[0].replaceChildren();
      $("live-summary").textContent = e.message;  // RabbitMQ: what it cannot list, its counts
      $("live-more").hidden = $("live-first").hidden = true;
      return;
    }
    liveNext = page.next_cursor;
    $("live-more").hidden = !liveNext;
    $("live-first").hidden = !liveCursor;
    $("live-summary").textContent =
      page.ready + " ready, " + page.delayed + " delayed; " + page.messages.length + " shown";
    fill("live", page.messages, (row, m) => {
      row.dataset.id = m.message_id;
      cell(row, m.message_id);
      cell(row, m.state, "state");
      cell(row, m.actor);
      cell(row, tenantName(m.tenant_id));
      cell(row, when(m.enqueued_at));
      cell(row, when(m.due_at));
      cell(row, m.retries, "n");
      const td = row.insertCell();
      const ids = { message_ids: [m.message_id] };
      button(td, "cancel", () => api("POST", path + "/cancel", ids));
      if (m.state === "delayed") {
        td.append(" ");
        button(td, "run now", () => api("POST", path + "/promote", ids));
      }
    });
  }

  // The error, in a <details> that fetches and shows the traceback when opened (and stays
  // open across refreshes).
  function traceback(td, d) {
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = d.error_type + ": " + d.error;
    const pre = document.createElement("pre");
    pre.className = "traceback";
    details.append(summary, pre);
    const show = async () => {
      if (!tracebacks.has(d.id)) {
        pre.textContent = "loading…";
        try {
          const full = await api("GET", "/api/dead-letters/" + d.id);
          tracebacks.set(d.id, full.traceback || "(no traceback recorded)");
        } catch (e) { pre.textContent = e.message; return; }
      }
      pre.textContent = tracebacks.get(d.id);
    };
    details.addEventListener("toggle", () => {
      if (details.open) { openTracebacks.add(d.id); show(); } else openTracebacks.delete(d.id);
    });
    if (openTracebacks.has(d.id)) details.open = true;
    td.appendChild(details);
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "muted";
  }

  // The mail server's circuit breaker: a badge (closed / open / half open) and a line.
  function showCircuit(c) {
    const labels = { closed: "closed", open: "open: email held", half_open: "half open" };
    const badge = $("mail-circuit-state");
    badge.textContent = c.enabled ? labels[c.state] : "breaker off";
    badge.className = "badge " + c.state;
    badge.dataset.state = c.state;
    const at = (ms) => (ms ? when(new Date(ms).toISOString()) : "-");
    let detail = "";
    if (c.state === "open") {
      detail = "since " + at(c.opened_at_ms) + ", next probe " + at(c.next_probe_ms) +
        (c.last_error ? " - " + c.last_error : "");
    } else if (c.state === "half_open") {
      detail = "answered a probe at " + at(c.half_open_at_ms) + ": password resets first";
    } else if (c.failures) {
      detail = c.failures + " delivery failure(s) in a row";
    }
    $("mail-circuit-detail").textContent = detail;
    $("mail-circuit-reset").hidden = c.state === "closed";
  }

  async function refresh() {
    try {
      const search = encodeURIComponent($("suppression-search").value.trim());
      const [queues, dead, runs, schedules, health, suppressed, changes, circuit, hooks,
        deliveries, campaigns, overview, activity] = await Promise.all([
        api("GET", "/api/queues"),
        api("GET", "/api/dead-letters?limit=50"),
        api("GET", "/api/runs?limit=50"),
        api("GET", "/api/schedules"),
        api("GET", "/api/health?check=workers&check=redis"),
        api("GET", "/api/suppressions?limit=50" + (search ? "&search=" + search : "")),
        api("GET", "/api/suppressions/changes?limit=10"),
        api("GET", "/api/mail-circuit"),
        api("GET", "/api/webhooks/endpoints"),
        api("GET", "/api/webhooks/deliveries?limit=50"),
        api("GET", "/api/campaigns?limit=50"),
        api("GET", "/api/overview" + trendTenant()),
        api("GET", "/api/activity"),
      ]);
      renderOverview(overview);
      renderActivity(activity);
      renderWorkers(health);
      showCircuit(circuit);
      await refreshLive(liveQueues(queues));
      fill("suppressions", suppressed, (row, s) => {
        row.dataset.address = s.address;
        cell(row, s.address);
        cell(row, s.reason);
        cell(row, when(s.created_at));
        cell(row, s.source);
        cell(row, s.event_id);
        button(row.insertCell(), "remove", () =>
          api("DELETE", "/api/suppressions/" + encodeURIComponent(s.address)));
      });
      fill("suppression-changes", changes, (row, c) => {
        cell(row, when(c.changed_at));
        cell(row, c.address);
        cell(row, c.action);
        cell(row, c.reason);
        cell(row, c.actor);
      });
      fill("webhook-endpoints", hooks, (row, e) => {
        row.dataset.id = e.id;
        cell(row, e.id);
        cell(row, e.tenant_id);
        cell(row, e.url);
        cell(row, e.event_types.join(" "));
        cell(row, e.enabled ? "enabled" : "disabled: " + (e.disabled_reason || ""),
          e.enabled ? "state" : "error state");
        const td = row.insertCell();
        button(td, "test", () => api("POST", "/api/webhooks/endpoints/" + e.id + "/test"));
        const toggle = e.enabled ? "disable" : "enable";
        button(td, toggle, () =>
          api("POST", "/api/webhooks/endpoints/" + e.id + "/" + toggle));
      });
      fill("webhook-deliveries", deliveries, (row, d) => {
        row.dataset.id = d.id;
        cell(row, d.id);
        cell(row, d.endpoint_id);
        cell(row, d.event_type);
        cell(row, d.status, d.status === "failed" ? "error status" : "status");
        cell(row, d.attempts, "n");
        cell(row, when(d.next_attempt_at));
        cell(row, d.last_error || d.last_status_code);
        const td = row.insertCell();
        if (d.status === "failed" || d.status === "succeeded") {
          button(td, "replay", () =>
            api("POST", "/api/webhooks/deliveries/" + d.id + "/replay"));
        }
      });
      fill("queues", queues, (row, q) => {
        row.dataset.queue = q.name;
        cell(row, q.name);
        cell(row, q.ready, "n ready");
        cell(row, q.delayed, "n delayed");
        cell(row, q.in_flight, "n in-flight");
        cell(row, q.dead, "n dead");
        cell(row, age(q.oldest_age_ms), "n");
        cell(row, q.paused ? "paused" : "running", q.paused ? "paused state" : "state");
        const action = q.paused ? "resume" : "pause";
        button(row.insertCell(), action, () =>
          api("POST", "/api/queues/" + encodeURIComponent(q.name) + "/" + action));
      });
      fill("dead-letters", dead, (row, d) => {
        row.dataset.id = d.id;
        cell(row, d.id);
        cell(row, d.actor);
        cell(row, d.queue);
        traceback(row.insertCell(), d);
        cell(row, d.attempts, "n");
        cell(row, when(d.failed_at));
        cell(row, d.replayed_as, "replayed-as");
        const td = row.insertCell();
        if (!d.replayed_at) {
          button(td, "replay", () =>
            api("POST", "/api/dead-letters/" + d.id + "/replay"));
        }
      });
      // Per tenant: grouped by tenant, newest first within each.
      runs.sort((a, b) => (a.tenant_id < b.tenant_id ? -1 : a.tenant_id > b.tenant_id ? 1 : 0) || (a.local_date < b.local_date ? 1 : -1));
      fill("runs", runs, (row, r) => {
        row.dataset.tenant = r.tenant_id;
        cell(row, tenantName(r.tenant_id), "tenant");
        cell(row, r.job);
        cell(row, r.local_date);
        cell(row, r.status, r.status === "failed" ? "error" : "");
        cell(row, when(r.started_at));
        cell(row, when(r.finished_at));
        const stats = row.insertCell();
        stats.className = "stats";
        if (r.error) { stats.textContent = r.error; stats.classList.add("error"); }
        statsList(stats, r.stats);
      });
      // The instants are the scheduler's (DST-correct); one in the past is due now.
      fill("schedules", schedules, (row, s) => {
        row.dataset.tenant = s.tenant_id;
        row.dataset.job = s.job;
        cell(row, s.job);
        cell(row, s.local_time);
        cell(row, s.tenant || tenantName(s.tenant_id));
        cell(row, s.timezone);
        cell(row, s.problem || when(s.next_run_local), s.problem ? "error" : "next-local");
        cell(row, when(s.next_run_utc), "next-utc");
        // A past instant with no ledger row yet: due, waiting for the next tick.
        cell(
          row,
          s.today_status || (s.waiting ? "due, not run yet" : null),
          s.today_status === "failed" ? "error" : s.waiting ? "today waiting" : "today",
        );
      });
      // Progress per campaign; the actions its status allows.
      const ACTIONS = { draft: ["start", "cancel"], running: ["pause", "cancel"],
                        paused: ["resume", "cancel"] };
      fill("campaigns", campaigns, (row, c) => {
        row.dataset.campaign = c.id;
        const p = c.progress;
        cell(row, c.id, "n");
        cell(row, tenantName(c.tenant_id));
        cell(row, c.name);
        cell(row, c.segment);
        cell(row, c.status, "campaign-status");
        cell(row, p.sent + " / " + p.total, "n sent");
        cell(row, p.queued, "n queued");
        cell(row, p.failed, p.failed ? "n error" : "n");
        cell(row, p.suppressed, "n");
        cell(row, p.unsubscribed, "n");
        cell(row, p.opt_outs, "n");
        const td = row.insertCell();
        for (const action of ACTIONS[c.status] || []) {
          button(td, action, () => api("POST", "/api/campaigns/" + c.id + "/" + action));
        }
      });
      setStatus("updated " + new Date().toLocaleTimeString(), false);
    } catch (e) {
      if (e.message !== "unauthorized") setStatus(e.message, true);
    }
  }

  function signIn() {
    $("login").hidden = true;
    $("main").hidden = false;
    refresh();
    timer = setInterval(refresh, 5000);
  }

  function signOut(reason) {
    sessionStorage.removeItem(KEY);
    document.documentElement.classList.remove("signed-in");
    if (timer) clearInterval(timer);
    timer = null;
    $("main").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = reason || "";
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("token").value);
    $("token").value = "";
    signIn();
  });
  $("logout").addEventListener("click", () => signOut(""));
  const firstPage = () => { liveCursor = null; refresh(); };
  $("live-queue").addEventListener("change", firstPage);
  $("trend-tenant").addEventListener("change", () => refresh());
  $("live-state").addEventListener("change", firstPage);
  $("live-first").addEventListener("click", firstPage);
  $("live-more").addEventListener("click", () => { liveCursor = liveNext; refresh(); });
  $("purge").addEventListener("click", async () => {
    const days = Number($("purge-days").value);
    if (!Number.isFinite(days) || days < 1) {
      $("purge-result").textContent = "give a number of days (1 or more)";
      return;
    }
    try {
      const result = await api("POST", "/api/dead-letters/purge?older_than_ms=" + days * 86400000);
      $("purge-result").textContent = "purged " + result.purged;
    } catch (e) { setStatus(e.message, true); }
    await refresh();
  });

  $("suppress").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await api("POST", "/api/suppressions", {
        address: $("suppress-address").value,
        reason: $("suppress-reason").value,
      });
      $("suppress-result").textContent =
        result.added ? "suppressed " + result.address : result.address + " was already suppressed";
      $("suppress-address").value = "";
    } catch (e) { setStatus(e.message, true); }
    await refresh();
  });
  $("suppression-search").addEventListener("input", () => refresh());
  $("mail-circuit-reset").addEventListener("click", async () => {
    try { await api("POST", "/api/mail-circuit/reset"); } catch (e) { setStatus(e.message, true); }
    await refresh();
  });
  $("webhook-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const tenant = $("webhook-tenant").value.trim();
    const types = $("webhook-events").value.split(/[\s,]+/).filter((t) => t);
    try {
      const created = await api("POST", "/api/webhooks/endpoints", {
        tenant_id: /^\d+$/.test(tenant) ? Number(tenant) : tenant,
        url: $("webhook-url").value.trim(),
        event_types: types.length ? types : ["*"],
      });
      // Shown once: the API never returns it again.
      $("webhook-secret").textContent =
        "endpoint " + created.id + " secret (copy it now): " + created.secret;
    } catch (e) { setStatus(e.message, true); }
    await refresh();
  });
  $("webhook-replay-failed").addEventListener("click", async () => {
    try {
      const result = await api("POST", "/api/webhooks/deliveries/replay");
      $("webhook-replayed").textContent = "replaying " + result.deliveries.length;
    } catch (e) { setStatus(e.message, true); }
    await refresh();
  });

  if (sessionStorage.getItem(KEY)) signIn();
})();
