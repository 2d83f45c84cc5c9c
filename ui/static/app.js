// orcheo UI: live updates over Server-Sent Events and confirmations.
// No inline script anywhere (the CSP forbids it); the server renders every
// fragment, escaped by html/template, and this file only swaps them in.
"use strict";

(function () {
  // Forms with data-confirm ask first.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      e.preventDefault();
    }
  });

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  function replace(id, html) {
    var el = document.getElementById(id);
    if (!el) return;
    // Keep which <details> the reader opened.
    var open = {};
    el.querySelectorAll("details").forEach(function (d, i) { open[i] = d.open; });
    el.replaceChildren(fragment(html));
    el.querySelectorAll("details").forEach(function (d, i) { if (i in open) d.open = open[i]; });
  }

  function say(text) {
    var el = document.getElementById("live-state");
    if (el) el.textContent = text;
  }

  function live(url, handlers) {
    if (!window.EventSource) return;
    var src = new EventSource(url);
    document.body.setAttribute("data-live", "connecting");
    src.addEventListener("open", function () {
      document.body.setAttribute("data-live", "on");
      say("Live: updates as runs change.");
    });
    src.addEventListener("error", function () {
      document.body.setAttribute("data-live", "off");
      say("Live updates interrupted; reconnecting…");
    });
    src.addEventListener("replaced", function () {
      src.close();
      document.body.setAttribute("data-live", "off");
      say("Live updates paused: this session is live in too many other tabs. Reload to resume.");
    });
    src.addEventListener("signedout", function () {
      src.close();
      window.location.assign("/ui/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
    });
    Object.keys(handlers).forEach(function (name) {
      src.addEventListener(name, function (e) { handlers[name](JSON.parse(e.data)); });
    });
  }

  // Bulk actions: select-all on the page, a count of the selection, and
  // the selection kept while the live stream replaces the rows.
  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll('#runs-body input[name="id"]'));
  }
  function counted() {
    var n = boxes().filter(function (b) { return b.checked; }).length;
    var c = document.getElementById("bulk-count");
    if (c) c.textContent = n ? n + (n === 1 ? " run selected." : " runs selected.") : "Select runs to act on them.";
    var all = document.getElementById("select-all");
    if (all) {
      var total = boxes().length;
      all.checked = total > 0 && n === total;
      all.indeterminate = n > 0 && n < total;
    }
  }
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = selectAll.checked; });
      counted();
    });
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches('#runs-body input[name="id"]')) counted();
  });

  var table = document.querySelector("table.runs[data-events]");
  if (table) {
    live(table.getAttribute("data-events"), {
      rows: function (d) {
        var picked = {};
        boxes().forEach(function (b) { if (b.checked) picked[b.value] = true; });
        replace("runs-body", d.rows);
        boxes().forEach(function (b) { if (picked[b.value]) b.checked = true; });
        counted();
        var c = document.getElementById("runs-count");
        if (c) c.textContent = d.count;
      }
    });
  }

  var run = document.getElementById("run-live");
  if (run) {
    live(run.getAttribute("data-events"), {
      run: function (d) {
        replace("run-summary", d.summary);
        replace("run-steps", d.steps);
        replace("run-actions", d.actions);
        document.body.setAttribute("data-run-terminal", d.terminal ? "yes" : "no");
      }
    });
  }
})();
