/* The operators' dashboard: live numbers over /ws/admin, changes through the admin API.
   Every word shown comes from the page (the #admin-strings block or the card template);
   text from the server or the operator is only ever set with textContent. */
(function () {
  "use strict";

  var S = JSON.parse(document.getElementById("admin-strings").textContent);
  var TOKEN_KEY = "wr-admin-token";
  var HISTORY_SECONDS = 300;
  var RATE_WINDOW_SECONDS = 5;
  var NUMBER_FIELDS = ["rate_per_minute", "max_active", "token_ttl_seconds", "session_ttl_seconds",
                       "abandon_after_seconds"];
  // the fast lane and the page: a checkbox and texts, where empty means "none" (back to the default)
  var PAGE_FIELDS = ["queue_only_when_full", "description", "logo_url", "accent_color"];
  var SETTING_FIELDS = NUMBER_FIELDS.concat(PAGE_FIELDS);
  var CONFIRM = { sold_out: true, closed: true };
  var number = new Intl.NumberFormat("en");
  var decimal = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

  var $ = function (id) { return document.getElementById(id); };
  var token = sessionStorage.getItem(TOKEN_KEY) || "";
  var socket = null;
  var retries = 0;
  var retryTimer = null;
  var lastAt = 0;          // unix seconds of the last push
  var lastArrival = 0;     // Date.now() when it arrived
  var cards = new Map();   // event id -> card
  var latest = [];         // the last pushed events

  function fmt(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (all, key) {
      return values && key in values ? String(values[key]) : all;
    });
  }

  function say(el, text, kind) {
    el.textContent = text || "";
    el.className = el.className.replace(/\b(ok|bad)\b/g, "").trim() + (kind ? " " + kind : "");
  }

  function setLive(state, text) {
    $("live").setAttribute("data-state", state);
    $("live-text").textContent = text;
  }

  // --- signing in and out -------------------------------------------------

  function showLogin(message) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    closeSocket();
    $("board").hidden = true;
    $("sign-out").hidden = true;
    $("login").hidden = false;
    say($("login-error"), message || "");
    setLive("off", S.signedOut);
    $("token").value = "";
    $("token").focus();
  }

  function showBoard() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
    connect();
  }

  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var given = $("token").value.trim();
    if (!given) { say($("login-error"), S.tokenMissing); return; }
    token = given;
    api("GET", "/api/admin/events").then(function (body) {
      sessionStorage.setItem(TOKEN_KEY, token);
      render(body.events, null);
      showBoard();
    }, function (err) {
      if (err.status !== 401) { token = ""; say($("login-error"), err.message); }
    });
  });

  $("sign-out").addEventListener("click", function () { showLogin(""); });

  // --- the admin API --------------------------------------------------------

  /* Resolves with the JSON body; rejects with {status, message} in words. A 401 anywhere signs out. */
  function api(method, path, body) {
    var init = { method: method, headers: { Authorization: "Bearer " + token, Accept: "application/json" },
                 cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (ignored) { data = null; }
        if (response.ok) return data;
        var error = data && data.error ? data.error : null;
        var message = error && error.message ? error.message : fmt(S.httpError, { status: response.status });
        if (response.status === 401) showLogin(S.tokenRefused);
        throw { status: response.status, message: message, field: error && error.field };
      });
    }, function (err) {
      throw { status: 0, message: fmt(S.networkError, { detail: err && err.message ? err.message : "offline" }) };
    });
  }

  function eventPath(id) { return "/api/admin/events/" + encodeURIComponent(id); }

  // --- the live stream ----------------------------------------------------------

  function connect() {
    closeSocket();
    if (!token) return;
    setLive("wait", S.connecting);
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/admin");
    socket = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ token: token })); };
    ws.onmessage = function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (ignored) { return; }
      retries = 0;
      lastArrival = Date.now();
      if (msg.type === "stats") {
        $("banner").hidden = true;
        render(msg.events, msg.at);
      } else if (msg.type === "unavailable") {
        banner(fmt(S.unavailable, { message: msg.message }));
      }
    };
    ws.onclose = function (e) {
      if (socket !== ws) return;
      socket = null;
      if (e.code === 4401) { showLogin(S.tokenRefused); return; }
      if (e.code === 4403) { banner(S.originRefused); setLive("bad", S.originRefused); return; }
      var delay = Math.min(15, Math.pow(2, retries)) * (0.5 + Math.random() / 2);
      retries += 1;
      setLive("bad", fmt(S.reconnecting, { seconds: Math.ceil(delay) }));
      retryTimer = setTimeout(connect, delay * 1000);
    };
  }

  function closeSocket() {
    clearTimeout(retryTimer);
    if (socket) {
      var ws = socket;
      socket = null;
      ws.close();
    }
  }

  function banner(text) {
    say($("banner"), text);
    $("banner").hidden = false;
  }

  /* The clock in the header says how fresh the numbers are, and turns into a warning when they are not. */
  setInterval(function () {
    if (!socket || !lastArrival) return;
    var quiet = Math.round((Date.now() - lastArrival) / 1000);
    if (quiet >= 4) setLive("bad", fmt(S.stale, { seconds: quiet }));
    else setLive("ok", fmt(S.updatedAt, { time: new Date(lastAt * 1000).toLocaleTimeString("en-GB") }));
  }, 1000);

  // --- cards ----------------------------------------------------------------------

  function render(events, at) {
    latest = events;
    if (at) lastAt = at;
    var seen = new Set();
    events.forEach(function (e) {
      seen.add(e.id);
      var card = cards.get(e.id) || makeCard(e.id);
      update(card, e, at);
    });
    cards.forEach(function (card, id) {
      if (!seen.has(id)) { card.root.remove(); cards.delete(id); }
    });
    $("no-events").hidden = events.length > 0;
    syncTargets(events);
  }

  function makeCard(id) {
    var root = $("card-template").content.firstElementChild.cloneNode(true);
    var q = function (sel) { return root.querySelector(sel); };
    var card = { id: id, root: root, q: q, history: [], settings: null, stats: null, dirty: new Set() };
    root.setAttribute("data-event", id);
    root.setAttribute("aria-labelledby", "card-title-" + id);
    q("h3").id = "card-title-" + id;
    q(".c-id").textContent = id;
    q(".c-page").href = "/e/" + encodeURIComponent(id);
    var form = q(".settings");
    SETTING_FIELDS.forEach(function (field) {
      ["input", "change"].forEach(function (kind) {
        form.elements[field].addEventListener(kind, function () {
          card.dirty.add(field);
          markChanged(card);
        });
      });
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); applySettings(card); });
    form.addEventListener("reset", function (e) {
      e.preventDefault();
      card.dirty.clear();
      fillSettings(card);
      say(q(".c-result"), "");
    });
    root.querySelectorAll("[data-status]").forEach(function (button) {
      button.addEventListener("click", function () { changeStatus(card, button.getAttribute("data-status")); });
    });
    insertSorted(root, id);
    cards.set(id, card);
    return card;
  }

  function insertSorted(root, id) {
    var list = $("events");
    var after = Array.prototype.find.call(list.children, function (el) { return el.getAttribute("data-event") > id; });
    list.insertBefore(root, after || null);
  }

  function update(card, e, at) {
    var s = e.settings, st = e.stats, q = card.q;
    card.settings = s;
    card.stats = st;
    q(".c-title").textContent = s.title;
    var badge = q(".c-status");
    badge.textContent = S.status[s.status] || s.status;
    badge.setAttribute("data-status", s.status);
    card.root.setAttribute("data-status", s.status);
    q(".c-meaning").textContent = S.statusMeaning[s.status] || "";
    card.root.querySelectorAll("[data-status]").forEach(function (b) {
      if (b.tagName === "BUTTON") b.setAttribute("aria-pressed", String(b.getAttribute("data-status") === s.status));
    });
    q(".n-waiting").textContent = number.format(st.waiting);
    q(".n-pending").textContent = number.format(st.admitted_pending);
    q(".n-active").textContent = number.format(st.active);
    var used = number.format(st.admitted_pending + st.active);
    q(".n-capacity").textContent = s.max_active > 0
      ? fmt(S.capacity, { used: used, max: number.format(s.max_active) })
      : fmt(S.capacityNoLimit, { used: used });
    q(".n-served").textContent = number.format(st.served_total);
    q(".n-issued").textContent = number.format(st.tickets_issued);
    q(".n-conns").textContent = number.format(st.connections);
    q(".n-rate").textContent = fmt(S.rate, { observed: decimal.format(st.observed_rate_per_minute),
                                             configured: number.format(s.rate_per_minute) });
    fillSettings(card);
    if (at) {
      record(card, at, st);
      draw(card);
    }
  }

  /* A setting as its input shows it: text ("" for none), "true"/"false" for a checkbox. */
  function shown(card, field) {
    var value = card.settings[field];
    return value === null || value === undefined ? "" : String(value);
  }

  function entered(input) {
    if (input.type === "checkbox") return String(input.checked);
    return input.tagName === "TEXTAREA" ? input.value : input.value.trim();
  }

  /* The inputs follow the live settings, except the ones the operator is editing. */
  function fillSettings(card) {
    var form = card.q(".settings");
    SETTING_FIELDS.forEach(function (field) {
      var input = form.elements[field];
      if (card.dirty.has(field) || document.activeElement === input) return;
      if (input.type === "checkbox") input.checked = card.settings[field] === true;
      else input.value = shown(card, field);
    });
    markChanged(card);
  }

  function markChanged(card) {
    var form = card.q(".settings");
    SETTING_FIELDS.forEach(function (field) {
      var input = form.elements[field];
      input.classList.toggle("changed", card.dirty.has(field) && entered(input) !== shown(card, field));
    });
  }

  function applySettings(card) {
    var form = card.q(".settings"), changes = {}, names = [];
    SETTING_FIELDS.forEach(function (field) {
      var input = form.elements[field], raw = entered(input);
      if (raw === shown(card, field)) return;
      if (NUMBER_FIELDS.indexOf(field) >= 0) {
        if (raw === "") return;
        changes[field] = /^-?\d+$/.test(raw) ? parseInt(raw, 10) : raw;  // the API says what is wrong
      } else if (input.type === "checkbox") {
        changes[field] = input.checked;
      } else {
        changes[field] = raw;  // "" clears it
      }
      var said = input.type === "checkbox" ? (input.checked ? S.on : S.off) : (raw === "" ? S.none : raw);
      names.push(S.fields[field] + " " + (said.length > 40 ? said.slice(0, 39) + "…" : said));
    });
    var result = card.q(".c-result");
    if (!names.length) { card.dirty.clear(); fillSettings(card); say(result, S.nothingChanged); return; }
    api("PUT", eventPath(card.id), changes).then(function (settings) {
      card.dirty.clear();
      card.settings = settings;
      fillSettings(card);
      say(result, fmt(S.saved, { changes: names.join(", ") }), "ok");
    }, function (err) {
      say(result, err.message, "bad");
      if (err.field && form.elements[err.field]) form.elements[err.field].focus();
    });
  }

  function changeStatus(card, status) {
    var result = card.q(".c-result");
    if (card.settings.status === status) {
      say(result, fmt(S.statusUnchanged, { status: S.status[status] }));
      return;
    }
    var go = function () {
      api("POST", eventPath(card.id) + "/status", { status: status }).then(function (settings) {
        update(card, { id: card.id, settings: settings, stats: card.stats }, null);
        say(result, fmt(S.statusChanged, { status: S.status[status], meaning: S.statusMeaning[status] }), "ok");
      }, function (err) { say(result, err.message, "bad"); });
    };
    if (!CONFIRM[status]) { go(); return; }
    confirmThen(status, card, go);
  }

  function confirmThen(status, card, go) {
    var dialog = $("confirm");
    var values = { title: card.settings.title, waiting: number.format(card.stats ? card.stats.waiting : 0) };
    $("confirm-title").textContent = fmt(S.confirmTitle[status], values);
    $("confirm-text").textContent = fmt(S.confirmText[status], values);
    $("confirm-ok").textContent = S.confirmButton[status];
    var opener = document.activeElement;
    dialog.returnValue = "cancel";
    dialog.onclose = function () {
      dialog.onclose = null;
      if (opener && opener.focus) opener.focus();
      if (dialog.returnValue === "ok") go();
    };
    dialog.showModal();
  }

  // --- the chart --------------------------------------------------------------------

  function record(card, at, st) {
    var h = card.history;
    if (h.length && at <= h[h.length - 1].at) return;
    h.push({ at: at, waiting: st.waiting, served: st.served_total });
    while (h.length && h[0].at < at - HISTORY_SECONDS - RATE_WINDOW_SECONDS) h.shift();
  }

  /* Admissions per second at each sample: served_total's growth over the last few seconds. */
  function rates(h) {
    var out = [], j = 0;
    for (var i = 0; i < h.length; i++) {
      while (j < i && h[i].at - h[j + 1].at >= RATE_WINDOW_SECONDS) j++;
      var span = h[i].at - h[j].at;
      out.push(span > 0 ? Math.max(0, (h[i].served - h[j].served) / span) : 0);
    }
    return out;
  }

  function draw(card) {
    var canvas = card.q(".c-chart");
    var css = getComputedStyle(canvas);
    var width = canvas.clientWidth, height = canvas.clientHeight;
    if (!width || !height) return;
    var ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    var g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    var h = card.history, now = h.length ? h[h.length - 1].at : 0;
    var perSecond = rates(h);
    var waiting = h.map(function (p) { return p.waiting; });
    var peak = Math.max(1, Math.max.apply(null, waiting.concat([0])));
    var fastest = Math.max(1, Math.max.apply(null, perSecond.concat([0])));
    var band = (height - 18) / 2;
    var font = "12px " + css.fontFamily;
    var x = function (at) { return ((at - (now - HISTORY_SECONDS)) / HISTORY_SECONDS) * width; };

    function series(values, top, max, colour, fill) {
      g.strokeStyle = css.getPropertyValue("--border");
      g.lineWidth = 1;
      g.beginPath(); g.moveTo(0, top + band + 0.5); g.lineTo(width, top + band + 0.5); g.stroke();
      if (!values.length) return;
      var y = function (v) { return top + band - (v / max) * (band - 14); };
      g.beginPath();
      values.forEach(function (v, i) {
        var px = x(h[i].at);
        if (i === 0) g.moveTo(px, y(v)); else g.lineTo(px, y(v));
      });
      g.strokeStyle = colour;
      g.lineWidth = 2;
      g.stroke();
      if (fill) {
        g.lineTo(x(h[h.length - 1].at), top + band);
        g.lineTo(x(h[0].at), top + band);
        g.closePath();
        g.globalAlpha = 0.15; g.fillStyle = colour; g.fill(); g.globalAlpha = 1;
      }
      g.fillStyle = css.getPropertyValue("--muted");
      g.font = font;
      g.textBaseline = "top";
      g.fillText(decimal.format(max), 4, top + 1);
    }

    series(waiting, 0, peak, css.getPropertyValue("--chart-waiting"), true);
    series(perSecond, band + 4, fastest, css.getPropertyValue("--chart-rate"), false);
    g.fillStyle = css.getPropertyValue("--muted");
    g.font = font;
    g.textBaseline = "bottom";
    g.fillText(S.chartStart, 2, height);
    var label = S.chartNow;
    g.fillText(label, width - g.measureText(label).width - 2, height);
    card.q(".c-chart-summary").textContent = fmt(S.chartSummary, {
      waiting: number.format(waiting.length ? waiting[waiting.length - 1] : 0), peak: number.format(peak),
      rate: decimal.format(perSecond.length ? perSecond[perSecond.length - 1] : 0),
    });
  }

  window.addEventListener("resize", function () { cards.forEach(draw); });

  // --- the notice composer ------------------------------------------------------------

  function syncTargets(events) {
    var select = $("notice-target"), chosen = select.value;
    var wanted = [""].concat(events.map(function (e) { return e.id; }));
    var have = Array.prototype.map.call(select.options, function (o) { return o.value; });
    if (wanted.join("\n") === have.join("\n")) {
      events.forEach(function (e, i) { select.options[i + 1].textContent = e.settings.title + " (" + e.id + ")"; });
      return;
    }
    select.textContent = "";
    wanted.forEach(function (id, i) {
      var option = document.createElement("option");
      option.value = id;
      option.textContent = id ? events[i - 1].settings.title + " (" + id + ")" : S.allEvents;
      select.appendChild(option);
    });
    select.value = wanted.indexOf(chosen) >= 0 ? chosen : "";
  }

  function noticeLevel() {
    var checked = $("notice-form").querySelector("input[name=level]:checked");
    return checked ? checked.value : "info";
  }

  function preview() {
    var text = $("notice-text").value;
    var shown = $("preview-text");
    shown.textContent = text || S.previewEmpty;  // as text, never as HTML: exactly what visitors will see
    shown.classList.toggle("empty", !text);
    $("notice-preview").className = "preview level-" + noticeLevel();
    $("notice-count").textContent = fmt(S.noticeCount, { count: text.length, max: 500 });
  }

  $("notice-text").addEventListener("input", preview);
  $("notice-form").addEventListener("change", preview);
  $("notice-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("notice-text").value, target = $("notice-target").value, result = $("notice-result");
    if (!text.trim()) { say(result, S.noticeEmpty, "bad"); $("notice-text").focus(); return; }
    var path = target ? eventPath(target) + "/notices" : "/api/admin/notices";
    api("POST", path, { text: text, level: noticeLevel() }).then(function (sent) {
      var name = target ? $("notice-target").selectedOptions[0].textContent : S.allEvents;
      say(result, fmt(S.noticeSent, { target: name, time: new Date(sent.at * 1000).toLocaleTimeString("en-GB") }),
          "ok");
    }, function (err) { say(result, err.message, "bad"); });
  });

  // --- creating an event ------------------------------------------------------------------

  $("create-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var form = e.target, result = $("create-result");
    var id = form.elements.id.value.trim();
    if (cards.has(id)) { say(result, fmt(S.exists, { event: id }), "bad"); return; }
    var body = {};
    if (form.elements.title.value.trim()) body.title = form.elements.title.value.trim();
    ["rate_per_minute", "max_active"].forEach(function (field) {
      var raw = form.elements[field].value.trim();
      if (raw !== "") body[field] = /^-?\d+$/.test(raw) ? parseInt(raw, 10) : raw;
    });
    if (form.elements.opens_at.value) body.opens_at = new Date(form.elements.opens_at.value).getTime() / 1000;
    api("PUT", eventPath(id || "-"), body).then(function (settings) {
      say(result, fmt(S.created, { event: id, url: location.origin + "/e/" + id }), "ok");
      form.reset();
      var known = latest.filter(function (ev) { return ev.id !== id; });
      render(known.concat([{ id: id, settings: settings, stats: emptyStats(settings) }]), null);
    }, function (err) { say(result, err.message, "bad"); });
  });

  function emptyStats(settings) {
    return { waiting: 0, admitted_pending: 0, active: 0, served_total: 0, tickets_issued: 0, connections: 0,
             rate_per_minute: settings.rate_per_minute, observed_rate_per_minute: 0 };
  }

  // --- start ----------------------------------------------------------------------------------

  preview();
  if (token) showBoard(); else showLogin("");
})();
