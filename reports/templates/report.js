// Filtering and drill-down for the lossconf report. Reads only the page's own DOM; no network.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var filters = { adapter: $("f-adapter"), loss: $("f-loss"), verdict: $("f-verdict"), mode: $("f-mode") };

  function keep(el) {
    var a = filters.adapter.value, l = filters.loss.value, v = filters.verdict.value;
    if (a && el.getAttribute("data-adapter") !== a) return false;
    if (l && el.getAttribute("data-loss") !== l) return false;
    var m = filters.mode ? filters.mode.value : "";
    if (m && el.hasAttribute("data-mode") && el.getAttribute("data-mode") !== m) return false;
    if (v && (" " + el.getAttribute("data-verdicts") + " ").indexOf(" " + v + " ") < 0) return false;
    return true;
  }

  function apply() {
    var shown = 0, rows = document.querySelectorAll("tr.impl-row");
    rows.forEach(function (row) {
      var ok = keep(row);
      row.classList.toggle("hidden", !ok);
      if (ok) shown += 1;
    });
    document.querySelectorAll("tbody.loss-group").forEach(function (group) {
      group.classList.toggle("hidden", !group.querySelector("tr.impl-row:not(.hidden)"));
    });
    document.querySelectorAll("details.cell-details").forEach(function (d) {
      d.classList.toggle("hidden", !keep(d));
    });
    $("f-shown").textContent = shown + " of " + rows.length + " implementations shown";
  }

  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && $(id);
    if (el && el.tagName === "DETAILS") {
      el.classList.remove("hidden");
      el.open = true;
      el.scrollIntoView({ block: "start" });
    }
  }

  Object.keys(filters).forEach(function (k) { if (filters[k]) filters[k].addEventListener("change", apply); });
  window.addEventListener("hashchange", openTarget);
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a.cell-link");
    if (link && link.getAttribute("href") === location.hash) openTarget();  // same hash: no hashchange
  });
  // print everything: open all details before printing, restore afterwards
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details"), function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () { closed.forEach(function (d) { d.open = false; }); });
  apply();
  openTarget();
})();
