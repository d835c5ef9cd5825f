// The gcmc-jobs dashboard: reads and acts through the admin JSON API with the token kept
// in this tab's sessionStorage. No framework; every value is inserted as text, never HTML.
"use strict";
(function () {
  const base = document.body.dataset.base || "";
  const KEY = "gcmc-jobs-token";
  const $ = (id) => document.getElementById(id);
  let timer = null;

  async function api(method, path) {
    const response = await fetch(base + path, {
      method,
      headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) },
    });
    if (response.status === 401 || response.status === 403 || response.status === 503) {
      const body = await response.json().catch(() => ({}));
      signOut(body.detail || "signed out");
      throw new Error("unauthorized");
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.detail || response.statusText);
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

  function fill(id, rows, render) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    for (const item of rows) render(body.insertRow(), item);
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "muted";
  }

  async function refresh() {
    try {
      const [queues, dead, runs, schedules] = await Promise.all([
        api("GET", "/api/queues"),
        api("GET", "/api/dead-letters?limit=50"),
        api("GET", "/api/runs?limit=50"),
        api("GET", "/api/schedules"),
      ]);
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
        cell(row, d.error_type + ": " + d.error);
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
        cell(row, r.tenant_id);
        cell(row, r.job);
        cell(row, r.local_date);
        cell(row, r.status, r.status === "failed" ? "error" : "");
        cell(row, when(r.started_at));
        cell(row, when(r.finished_at));
        cell(row, r.error || JSON.stringify(r.stats));
      });
      // The instants are the scheduler's (DST-correct); one in the past is due now.
      fill("schedules", schedules, (row, s) => {
        row.dataset.tenant = s.tenant_id;
        row.dataset.job = s.job;
        cell(row, s.job);
        cell(row, s.local_time);
        cell(row, s.tenant_id);
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
  $("purge").addEventListener("click", async () => {
    const days = Number($("purge-days").value || 0);
    try {
      const result = await api("POST", "/api/dead-letters/purge?older_than_ms=" + days * 86400000);
      $("purge-result").textContent = "purged " + result.purged;
    } catch (e) { setStatus(e.message, true); }
    await refresh();
  });

  if (sessionStorage.getItem(KEY)) signIn();
})();
