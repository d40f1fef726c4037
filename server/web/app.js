// The dashboard's router: #/jobs, #/job/ID and #/try, one page at a time. Each page's render
// returns its cleanup (abort fetches, stop the watch). window.hpschedTest exposes what a page
// drew (the uPlot instances and their data, load times) for tests/web/dashboard_test.py.
"use strict";

window.hpschedTest = {};

(() => {
  const main = document.getElementById("main");
  let cleanup = null;

  function route() {
    if (cleanup) cleanup();
    cleanup = null;
    const hash = location.hash || "#/jobs";
    const q = hash.indexOf("?");
    const path = q >= 0 ? hash.slice(1, q) : hash.slice(1);
    const params = new URLSearchParams(q >= 0 ? hash.slice(q + 1) : "");
    document.getElementById("nav-jobs").classList.toggle("active", path === "/jobs" || path.startsWith("/job/"));
    document.getElementById("nav-try").classList.toggle("active", path === "/try");
    if (path.startsWith("/job/")) {
      const id = decodeURIComponent(path.slice(5));
      document.title = id + " · hpsched";
      cleanup = JobPage.render(main, id, params);
    } else if (path === "/try") {
      document.title = "Try a schedule · hpsched";
      cleanup = TryPage.render(main);
    } else {
      document.title = "Jobs · hpsched";
      cleanup = JobsPage.render(main, params);
    }
  }

  document.getElementById("token-button").addEventListener("click", () => {
    const current = localStorage.getItem("hpsched.token") || "";
    const next = prompt("Bearer token for this server (kept in this browser's local storage; empty to clear):", current);
    if (next === null) return;
    // The header (api.js) for every call, Preview's POST included; the cookie hpsched_token for the
    // page loads themselves, which cannot carry a header (docs/http.md, Tokens).
    const secure = location.protocol === "https:" ? "; Secure" : "";
    if (next) {
      localStorage.setItem("hpsched.token", next.trim());
      document.cookie = "hpsched_token=" + encodeURIComponent(next.trim()) + "; path=/; SameSite=Strict" + secure;
    } else {
      localStorage.removeItem("hpsched.token");
      document.cookie = "hpsched_token=; path=/; max-age=0; SameSite=Strict" + secure;
    }
    route();
  });

  // The jobs page rewrites its own hash (filters) with replaceState, which fires no hashchange.
  window.addEventListener("hashchange", route);
  route();
})();
