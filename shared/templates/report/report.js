// Portfolio report: filter by verdict, state, finding and text; sort by column. The
// filters live in the URL fragment (#verdict=BLOCKED&state=drifted) so a link can open
// the report pre-filtered. Without script the full table still reads and prints.
(function () {
  "use strict";
  var doc = document;
  doc.documentElement.classList.add("js");
  var tbody = doc.getElementById("rows");
  if (!tbody) { return; }
  var rows = Array.prototype.slice.call(tbody.rows);
  var filters = {
    verdict: doc.getElementById("f-verdict"),
    state: doc.getElementById("f-state"),
    finding: doc.getElementById("f-finding"),
    q: doc.getElementById("f-text")
  };
  var shown = doc.getElementById("shown");
  var printFilter = doc.getElementById("printfilter");
  var totals = Array.prototype.slice.call(doc.querySelectorAll(".totals button[data-verdict]"));
  var headers = Array.prototype.slice.call(doc.querySelectorAll("th[data-sort]"));

  function value(name) { return filters[name].value.trim(); }

  function apply() {
    var verdict = value("verdict"), state = value("state"), finding = value("finding");
    var q = value("q").toLowerCase();
    var n = 0;
    for (var i = 0; i < rows.length; i++) {
      var d = rows[i].dataset;
      var ok = (!verdict || d.verdict === verdict) && (!state || d.state === state) &&
        (!finding || (" " + d.codes + " ").indexOf(" " + finding + " ") >= 0) &&
        (!q || d.search.indexOf(q) >= 0);
      rows[i].hidden = !ok;
      if (ok) { n++; }
    }
    shown.textContent = "Showing " + n + " of " + rows.length + " clients";
    totals.forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.verdict === verdict));
    });
    var parts = [];
    ["verdict", "state", "finding", "q"].forEach(function (name) {
      if (value(name)) { parts.push(name + "=" + encodeURIComponent(value(name))); }
    });
    printFilter.textContent = parts.length ? "Filtered: " + parts.join(", ").replace(/%20/g, " ") : "";
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (location.hash !== hash) {
      history.replaceState(null, "", hash || location.pathname + location.search);
    }
  }

  function fromHash() {
    var wanted = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var kv = pair.split("=");
      if (kv.length === 2 && filters[kv[0]]) {
        try { wanted[kv[0]] = decodeURIComponent(kv[1]); } catch (e) { /* ignore a bad fragment */ }
      }
    });
    Object.keys(filters).forEach(function (name) {
      var el = filters[name], v = wanted[name] || "";
      if (el.tagName === "SELECT" && v && !el.querySelector('option[value="' + CSS.escape(v) + '"]')) {
        v = "";
      }
      el.value = v;
    });
  }

  function compare(a, b, key, numeric) {
    var x = a.dataset[key] || "", y = b.dataset[key] || "";
    if (x === y) { return 0; }
    if (x === "") { return 1; }
    if (y === "") { return -1; }
    if (numeric) { return Number(x) - Number(y); }
    return x < y ? -1 : 1;
  }

  function sortBy(th) {
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var key = th.dataset.sort, numeric = th.dataset.type === "number";
    rows.sort(function (a, b) {
      var c = compare(a, b, key, numeric);
      if (c !== 0 && a.dataset[key] && b.dataset[key]) { c *= dir; }
      return c || Number(a.dataset.order) - Number(b.dataset.order);
    });
    var fragment = doc.createDocumentFragment();
    rows.forEach(function (r) { fragment.appendChild(r); });
    tbody.appendChild(fragment);
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
  }

  Object.keys(filters).forEach(function (name) {
    filters[name].addEventListener(name === "q" ? "input" : "change", apply);
  });
  totals.forEach(function (b) {
    b.addEventListener("click", function () {
      filters.verdict.value = b.getAttribute("aria-pressed") === "true" ? "" : b.dataset.verdict;
      apply();
    });
  });
  doc.getElementById("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  doc.getElementById("f-clear").addEventListener("click", function () {
    Object.keys(filters).forEach(function (name) { filters[name].value = ""; });
    apply();
  });
  headers.forEach(function (th) {
    th.querySelector("button").addEventListener("click", function () { sortBy(th); });
  });
  window.addEventListener("hashchange", function () { fromHash(); apply(); });
  fromHash();
  apply();
}());
