// taskmesh dashboard: live-stream control and keyboard shortcuts. No inline code anywhere
// (the CSP forbids it); pages work without this file.
(function () {
  "use strict";
  var source = null;

  function liveRoot() { return document.querySelector("[sse-connect]"); }

  function mark(text) {
    var el = document.getElementById("live-state");
    if (el) { el.textContent = text; }
  }

  document.addEventListener("htmx:sseOpen", function (e) {
    source = e.detail.source;
    mark("· live");
  });
  document.addEventListener("htmx:sseError", function () { mark("· reconnecting…"); });

  // Never swap under a user who is typing in a form or has a dialog open.
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var active = document.activeElement;
    var typing = active && active.closest && active.closest("form") && liveRoot() && liveRoot().contains(active);
    if (document.hidden || document.querySelector("dialog[open]") || typing) { e.preventDefault(); }
  });

  // Close the stream while the tab is hidden; open a fresh one when it is shown again.
  document.addEventListener("visibilitychange", function () {
    var root = liveRoot();
    if (!root || typeof htmx === "undefined") { return; }
    if (document.hidden) {
      if (source) { source.close(); source = null; }
      mark("· paused while hidden");
    } else if (!source) {
      var fresh = root.cloneNode(true);
      root.replaceWith(fresh);
      htmx.process(fresh);
    }
  });

  // Times in the viewer's own zone: cells marked `time.local` get their text, every other
  // <time> a tooltip.
  function localTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) { return; }
      var text = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" });
      if (el.classList.contains("local")) { el.textContent = text; } else { el.title = text; }
    });
  }
  document.addEventListener("DOMContentLoaded", localTimes);
  document.addEventListener("htmx:afterSettle", localTimes);

  // Keys: "g" then o/t/q/s/c moves between pages; "/" focuses the first filter field.
  var pages = { o: "/ui", t: "/ui/tasks", q: "/ui/queues", s: "/ui/schedules", c: "/ui/cluster" };
  var pending = false;
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || (t && /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return; }
    if (pending && pages[e.key]) { window.location.assign(pages[e.key]); pending = false; return; }
    pending = e.key === "g";
    if (e.key === "/") {
      var field = document.querySelector("form.filters input, form.filters select");
      if (field) { e.preventDefault(); field.focus(); }
    }
  });
})();
