// The demo order page: count down the reserved session. Texts come from the
// data-template / data-over attributes of #session-timer.
"use strict";

(() => {
  const timer = document.getElementById("session-timer");
  const expiresAt = Number(timer && timer.dataset.expiresAt);
  if (!timer || !Number.isFinite(expiresAt) || expiresAt <= 0) return;

  const clock = window.wrClock; // static/clock.js

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
