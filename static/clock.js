// A countdown as the pages show it: h:mm:ss, or m:ss under an hour. One copy for every page script
// (loaded before them, deferred, so it runs first).
"use strict";

window.wrClock = (seconds) => {
  const s = Math.max(0, Math.ceil(seconds));
  const two = (n) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
};
