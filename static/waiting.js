// The waiting-room page: join the line, listen on the WebSocket, show the
// place in line, and post the admission token to the target when it is time.
// Vanilla ES2020, no libraries. Every text comes from the #wr-strings block;
// every text is written with textContent, never as markup.
"use strict";

(() => {
  const RECONNECT_BASE_MS = 1000;
  const RECONNECT_CAP_MS = 30000;
  const STABLE_MS = 10000; // a socket open this long resets the backoff
  const FAILS_BEFORE_POLLING = 3;
  const POLL_MS = 5000;
  const AUTO_CONTINUE_MS = 3000;
  const ETA_ANNOUNCE_GAP_MS = 30000;
  const PANELS = ["queue", "pre", "turn", "final"];

  const $ = (id) => document.getElementById(id);
  const readJSON = (id) => JSON.parse($(id).textContent);
  const CONFIG = readJSON("wr-config");
  const T = readJSON("wr-strings");
  const LANG = document.documentElement.lang || "en";

  const S = {
    phase: "queue", // queue | turn | final
    status: CONFIG.status, // open | paused | sold_out | closed
    opensAt: CONFIG.opensAt,
    ticket: null,
    wsPath: null,
    state: null, // the ticket's state
    position: null, // lowest position seen for this ticket
    startPosition: null,
    waiting: null,
    eta: null,
    ws: null,
    live: false,
    attempts: 0, // reconnect attempts since the last stable socket
    failsBeforeOpen: 0,
    rejoined: false,
    retry: null, // {at, key, action, button}
    retryTimer: 0,
    stableTimer: 0,
    pollTimer: 0,
    skewMs: 0, // server clock minus ours
    noticeId: null,
    announced: { milestone: null, eta: null, at: 0 },
    admitted: null, // {expiresAt}
    fetchingFinal: false,
    continued: false,
  };

  // ---- text helpers -------------------------------------------------------

  function fmt(key, vars = {}) {
    const text = T[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (all, name) => (name in vars ? String(vars[name]) : all));
  }

  const num = (n) => Number(n).toLocaleString(LANG);
  const serverNow = () => Date.now() + S.skewMs;

  function etaText(eta) {
    if (eta === null || eta === undefined || !Number.isFinite(eta)) {
      return S.status === "paused" ? T.eta_paused : T.eta_calculating;
    }
    if (S.status === "paused") return T.eta_paused;
    if (eta < 60) return T.eta_less_minute;
    const minutes = Math.round(eta / 60);
    if (minutes < 2) return T.eta_one_minute;
    if (minutes < 60) return fmt("eta_minutes", { minutes: num(minutes) });
    const hours = Math.round(eta / 3600);
    return hours < 2 ? T.eta_one_hour : fmt("eta_hours", { hours: num(hours) });
  }

  const clock = window.wrClock; // static/clock.js

  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  // "You are number {position} in line" with the number in <strong>.
  function setPositionText(position) {
    const el = $("position");
    if (position === 1) return setText("position", T.position_front);
    const [before, after = ""] = T.position.split("{position}");
    const strong = document.createElement("strong");
    strong.className = "num";
    strong.textContent = num(position);
    el.replaceChildren(before, strong, after);
  }

  function announce(text) {
    const el = $("announcer");
    el.textContent = "";
    setTimeout(() => { el.textContent = text; }, 50);
  }

  // ---- rendering ----------------------------------------------------------

  function showPanel(name) {
    for (const panel of PANELS) $(`panel-${panel}`).hidden = panel !== name;
    $("hint").hidden = name !== "queue" && name !== "pre";
  }

  function renderQueue() {
    if (S.phase !== "queue") return;
    if (S.status === "sold_out" || S.status === "closed") {
      setText("final-text", T[S.status]);
      $("final-action").hidden = true;
      return showPanel("final");
    }
    const opensIn = S.opensAt ? S.opensAt * 1000 - serverNow() : 0;
    if (S.position === null && (S.state === "pre_queue" || opensIn > 0)) {
      renderPreQueue();
      return showPanel("pre");
    }
    showPanel("queue");
    $("paused-note").hidden = S.status !== "paused";
    setText("eta", S.ticket ? etaText(S.eta) : T.eta_calculating);
    setText("waiting", S.waiting === null || S.waiting === undefined ? "–" : num(S.waiting));
    if (S.position === null) return setText("position", T.joining);
    setPositionText(S.position);
    renderProgress();
    maybeAnnounce();
  }

  function renderProgress() {
    const span = S.startPosition - 1;
    const done = span > 0 ? (S.startPosition - S.position) / span : 1;
    const value = Math.round(Math.min(1, Math.max(0, done)) * 100);
    const bar = $("progress");
    bar.value = value;
    bar.setAttribute("aria-valuetext", `${value}%`);
  }

  function renderPreQueue() {
    const seconds = S.opensAt ? S.opensAt - serverNow() / 1000 : 0;
    setText("pre-countdown", seconds > 0 ? fmt("pre_queue", { countdown: clock(seconds) }) : T.opening);
  }

  function renderTurn() {
    if (!S.admitted) return;
    const seconds = S.admitted.expiresAt - serverNow() / 1000;
    if (S.continued) return setText("turn-countdown", T.redirecting);
    setText("turn-countdown", fmt("turn_expires", { countdown: clock(seconds) }));
    if (seconds <= 0) fetchFinal();
  }

  function renderConn() {
    const retry = S.retry;
    const seconds = retry ? Math.max(1, Math.ceil((retry.at - Date.now()) / 1000)) : 0;
    let text = T.conn_connecting;
    let kind = "wait";
    if (S.live) [text, kind] = [T.conn_live, "live"];
    else if (retry && retry.key !== "conn_reconnecting") [text, kind] = [fmt(retry.key, { seconds }), "bad"];
    else if (S.pollTimer) [text, kind] = [T.conn_polling, "wait"];
    else if (retry) [text, kind] = [fmt(retry.key, { seconds }), "bad"];
    setText("conn-text", text);
    $("conn").dataset.kind = kind;
    $("retry").hidden = !(retry && retry.button);
  }

  // Announce only when the position crosses a step (every place near the
  // front, then tens, hundreds, thousands) or the spoken ETA changes.
  function milestone(p) {
    const step = p <= 10 ? 1 : p <= 100 ? 10 : p <= 1000 ? 100 : 1000;
    return Math.ceil(p / step) * step;
  }

  function maybeAnnounce() {
    const eta = etaText(S.eta);
    const mark = milestone(S.position);
    const last = S.announced;
    const crossed = mark !== last.milestone;
    const etaChanged = eta !== last.eta && Date.now() - last.at >= ETA_ANNOUNCE_GAP_MS;
    if (!crossed && !etaChanged) return;
    S.announced = { milestone: mark, eta, at: Date.now() };
    announce(fmt("announce", { position: num(S.position), eta }));
  }

  function showNotice(notice) {
    if (notice.id !== undefined && notice.id === S.noticeId) return;
    S.noticeId = notice.id;
    const critical = notice.level === "critical";
    const target = $(critical ? "notice-alert" : "notice-status");
    $(critical ? "notice-status" : "notice-alert").textContent = "";
    const level = critical ? "critical" : notice.level === "warning" ? "warning" : "info";
    target.className = `notice notice-${level}`;
    target.textContent = String(notice.text ?? "");
  }

  // A state in words, with an optional button; stops every connection.
  function finish(key, action = null) {
    S.phase = "final";
    stopEverything();
    setText("final-text", T[key] ?? key);
    const button = $("final-action");
    button.hidden = !action;
    if (action) {
      button.textContent = T[action.label];
      button.onclick = action.run;
    }
    showPanel("final");
    S.live = false;
    renderConn();
    $("conn").hidden = true;
    $("final-text").focus();
  }

  const REJOIN = { label: "rejoin", run: () => { S.rejoined = false; restart(join); } };
  const TAKE_OVER = { label: "take_over", run: () => restart(connect) };

  function restart(action) {
    S.phase = "queue";
    $("conn").hidden = false;
    renderQueue();
    action();
  }

  // ---- ticket data --------------------------------------------------------

  function useTicket(ticket) {
    if (ticket === S.ticket) return;
    S.ticket = ticket;
    S.position = null;
    S.startPosition = null;
    S.admitted = null;
    S.announced = { milestone: null, eta: null, at: 0 };
    try {
      const saved = JSON.parse(localStorage.getItem("wr:start") || "null");
      if (saved && saved.ticket === ticket) S.startPosition = saved.start;
    } catch { /* storage may be disabled */ }
  }

  function takePosition(position) {
    if (typeof position !== "number" || !(position >= 1)) return;
    S.position = S.position === null ? position : Math.min(S.position, position);
    if (S.startPosition === null || S.startPosition < S.position) {
      S.startPosition = S.position;
      try {
        localStorage.setItem("wr:start", JSON.stringify({ ticket: S.ticket, start: S.position }));
      } catch { /* storage may be disabled */ }
    }
  }

  function applyPosition(data) {
    takePosition(data.position);
    if ("waiting" in data) S.waiting = data.waiting;
    if ("eta_seconds" in data) S.eta = data.eta_seconds;
    if (S.position !== null && S.state === "pre_queue") S.state = "waiting";
    renderQueue();
  }

  function finalKey(state) {
    if (state === "removed" && S.status === "closed") return "closed";
    return state;
  }

  // A ticket object from POST /tickets or GET /tickets/{ticket}.
  function applyTicket(data) {
    S.state = data.state;
    if (data.state === "admitted" && data.token) return onAdmitted(data);
    if (["expired", "removed", "redeemed"].includes(data.state)) {
      const key = finalKey(data.state);
      return finish(key, key === "expired" || key === "removed" ? REJOIN : null);
    }
    applyPosition(data);
  }

  // ---- joining ------------------------------------------------------------

  function learnSkew(response) {
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isFinite(date)) S.skewMs = date + 500 - Date.now();
  }

  function retryAfterMs(response) {
    const header = response.headers.get("Retry-After") || "";
    let seconds = Number(header);
    if (!Number.isFinite(seconds) || header.trim() === "") {
      const date = Date.parse(header);
      seconds = Number.isFinite(date) ? (date - Date.now()) / 1000 : 5;
    }
    seconds = Math.min(300, Math.max(1, seconds));
    return seconds * 1000 * (1 + Math.random() * 0.2);
  }

  async function join(proof = null) {
    clearRetry();
    let response;
    let body = null;
    try {
      response = await fetch(`/api/events/${encodeURIComponent(CONFIG.event)}/tickets`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(proof ? { proof } : {}),
      });
      body = await response.json().catch(() => null);
    } catch {
      return scheduleRetry("network_error", nextBackoff(), join, true);
    }
    learnSkew(response);
    if (response.ok && body && body.ticket) return startTicket(body);
    switch (response.status) {
      case 404: return finish("unknown_event");
      case 409: return finish(S.status === "sold_out" ? "sold_out" : "closed");
      case 428: return body && body.error && body.error.challenge
        ? proveWork(body.error.challenge)
        : scheduleRetry("network_error", nextBackoff(), join, true);
      case 429: return scheduleRetry("rate_limited", retryAfterMs(response), join, false);
      case 503: return scheduleRetry("unavailable", retryAfterMs(response), join, false);
      default: return scheduleRetry("network_error", nextBackoff(), join, true);
    }
  }

  // The event asks for proof of work before a new place in line: solve the challenge in a worker
  // (the page stays responsive), showing how far along it probably is, then join with the answer.
  function proveWork(challenge) {
    let worker;
    try {
      worker = new Worker("/static/proof-worker.js");
    } catch {
      return scheduleRetry("network_error", nextBackoff(), join, true);
    }
    const expected = 2 ** Number(challenge.difficulty);
    const bar = $("progress");
    const show = (tried) => {
      const percent = Math.min(99, Math.floor(100 * (1 - Math.exp(-tried / expected))));
      setText("position", fmt("proof_working", { percent }));
      bar.value = percent;
      bar.setAttribute("aria-valuetext", `${percent}%`);
    };
    show(0);
    worker.onmessage = (event) => {
      const { tried, nonce } = event.data;
      show(tried);
      if (nonce === undefined) return;
      worker.terminate();
      bar.value = 0;
      join({ challenge: challenge.challenge, nonce });
    };
    worker.onerror = () => {
      worker.terminate();
      scheduleRetry("network_error", nextBackoff(), join, true);
    };
    worker.postMessage({ challenge: challenge.challenge, difficulty: Number(challenge.difficulty) });
  }

  function startTicket(data) {
    useTicket(data.ticket);
    S.wsPath = data.ws || `/ws/tickets/${encodeURIComponent(data.ticket)}`;
    if ("opens_at" in data) S.opensAt = data.opens_at;
    S.attempts = 0;
    applyTicket(data);
    if (S.phase !== "final") connect();
  }

  // ---- WebSocket ----------------------------------------------------------

  function socketURL(path) {
    if (/^wss?:\/\//.test(path)) return path;
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  function connect() {
    clearRetry();
    closeSocket();
    let ws;
    try {
      ws = new WebSocket(socketURL(S.wsPath));
    } catch {
      return onSocketClosed(1006, false);
    }
    S.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (S.ws !== ws) return;
      opened = true;
      S.live = true;
      S.failsBeforeOpen = 0;
      stopPolling();
      S.stableTimer = setTimeout(() => { S.attempts = 0; S.rejoined = false; }, STABLE_MS);
      renderConn();
    };
    ws.onmessage = (event) => {
      if (S.ws === ws) onMessage(event.data);
    };
    ws.onclose = (event) => {
      if (S.ws !== ws) return;
      S.ws = null;
      S.live = false;
      clearTimeout(S.stableTimer);
      onSocketClosed(event.code, opened);
    };
    renderConn();
  }

  function closeSocket() {
    const ws = S.ws;
    S.ws = null;
    S.live = false;
    clearTimeout(S.stableTimer);
    if (ws && ws.readyState < 2) ws.close(1000);
  }

  function onMessage(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    switch (message.type) {
      case "position": return applyPosition(message);
      case "admitted": return onAdmitted(message);
      case "notice": return showNotice(message);
      case "state": return onState(message);
      default: return undefined;
    }
  }

  function onState(message) {
    S.status = message.state;
    renderQueue();
  }

  function onSocketClosed(code, opened) {
    if (S.phase === "final") return;
    switch (code) {
      case 4404: return rejoinOnce();
      case 4409: return fetchFinal();
      case 4001: return finish("other_tab", TAKE_OVER);
      case 4403: return finish("origin_error");
      default: break;
    }
    if (S.phase === "turn") return; // the token is in hand; the socket is no longer needed
    if (!opened && ++S.failsBeforeOpen >= FAILS_BEFORE_POLLING) startPolling();
    scheduleRetry("conn_reconnecting", nextBackoff(), connect, true);
  }

  function rejoinOnce() {
    if (S.rejoined) return finish("lost_ticket", REJOIN);
    S.rejoined = true;
    closeSocket();
    stopPolling();
    return join();
  }

  // ---- retries and polling --------------------------------------------------

  function nextBackoff() {
    const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** S.attempts);
    S.attempts += 1;
    return Math.random() * ceiling; // full jitter
  }

  function scheduleRetry(key, delayMs, action, button) {
    clearRetry();
    S.retry = { at: Date.now() + delayMs, key, action, button };
    S.retryTimer = setTimeout(() => { clearRetry(); action(); }, delayMs);
    renderConn();
  }

  function clearRetry() {
    clearTimeout(S.retryTimer);
    S.retry = null;
  }

  function retryNow() {
    const retry = S.retry;
    if (!retry) return;
    clearRetry();
    retry.action();
  }

  function startPolling() {
    if (S.pollTimer || !S.ticket) return;
    S.pollTimer = setInterval(poll, POLL_MS);
    poll();
  }

  function stopPolling() {
    clearInterval(S.pollTimer);
    S.pollTimer = 0;
  }

  async function getTicket() {
    const response = await fetch(`/api/tickets/${encodeURIComponent(S.ticket)}`, {
      credentials: "same-origin",
      cache: "no-store",
    });
    learnSkew(response);
    const body = await response.json().catch(() => null);
    return { status: response.status, body };
  }

  async function poll() {
    let result;
    try {
      result = await getTicket();
    } catch {
      return;
    }
    if (S.live || S.phase !== "queue" || !S.pollTimer) return;
    if (result.status === 404) return rejoinOnce();
    if (result.status === 200 && result.body) applyTicket(result.body);
  }

  // The socket said the ticket is done: ask what became of it.
  async function fetchFinal() {
    if (S.fetchingFinal || S.phase === "final") return;
    S.fetchingFinal = true;
    closeSocket();
    stopPolling();
    let result = null;
    try {
      result = await getTicket();
    } catch { /* handled below */ }
    S.fetchingFinal = false;
    if (!result) return scheduleRetry("network_error", nextBackoff(), fetchFinal, true);
    if (result.status === 404) return finish("lost_ticket", REJOIN);
    if (result.status !== 200 || !result.body) {
      return scheduleRetry("network_error", nextBackoff(), fetchFinal, true);
    }
    const state = result.body.state;
    if (state === "admitted" && S.admitted && S.admitted.expiresAt <= serverNow() / 1000) {
      return finish("expired", REJOIN);
    }
    applyTicket(result.body);
    if (state === "waiting" || state === "pre_queue") connect();
  }

  function stopEverything() {
    clearRetry();
    closeSocket();
    stopPolling();
  }

  // ---- admission ----------------------------------------------------------

  function safeURL(url) {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function onAdmitted(data) {
    if (S.phase === "turn" || S.phase === "final") return;
    const action = safeURL(data.redirect);
    if (!action || !data.token) return finish("lost_ticket", REJOIN);
    S.phase = "turn";
    S.admitted = { expiresAt: Number(data.expires_at) || 0 };
    clearRetry();
    stopPolling();
    const form = $("turn-form");
    form.action = action;
    $("turn-token").value = data.token;
    showPanel("turn");
    renderTurn();
    $("turn-title").focus();
    setTimeout(continueNow, AUTO_CONTINUE_MS);
  }

  // Post the token to the target (never in the URL).
  function continueNow() {
    if (S.continued || S.phase !== "turn") return;
    S.continued = true;
    closeSocket();
    renderTurn();
    $("turn-form").submit();
  }

  // ---- start ----------------------------------------------------------------

  function everySecond() {
    if (S.phase === "queue" && $("panel-pre").hidden === false) renderQueue();
    if (S.phase === "turn") renderTurn();
    if (S.phase !== "final") renderConn();
  }

  function start() {
    $("retry").addEventListener("click", retryNow);
    $("turn-form").addEventListener("submit", (event) => {
      event.preventDefault();
      continueNow();
    });
    window.addEventListener("online", () => { if (S.retry && S.retry.button) retryNow(); });
    window.addEventListener("pageshow", (event) => { if (event.persisted) location.reload(); });
    setInterval(everySecond, 500);
    renderQueue();
    renderConn();
    join();
  }

  start();
})();
