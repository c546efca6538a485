// The demo order page: count down the reserved session. Texts come from the
// data-template / data-over attributes of #session-timer.
"use strict";

(() => {
  const timer = document.getElementById("session-timer");
  const expiresAt = Number(timer && timer.dataset.expiresAt);
  if (!timer || !Number.isFinite(expiresAt) || expiresAt <= 0) return;

  function clock(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    const two = (n) => String(n).padStart(2, "0");
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
  }

  let handle = 0;
  function update() {
    const left = expiresAt - Date.now() / 1000;
    if (left <= 0) {
      timer.textContent = timer.dataset.over;
      timer.classList.add("over");
      clearInterval(handle);
      return;
    }
    timer.textContent = timer.dataset.template.replace("{countdown}", clock(left));
  }

  update();
  handle = setInterval(update, 1000);
})();
