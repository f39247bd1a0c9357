// Filtering and sorting of the findings tables, and the map cursor. Reads only the page.
"use strict";
(function () {
  var violations = 0;
  document.addEventListener("securitypolicyviolation", function (e) {
    violations += 1;
    document.body.setAttribute("data-csp-violations", String(violations));
    document.body.setAttribute("data-csp-last", e.violatedDirective + " " + e.blockedURI);
  });
  function applyFilter(box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (!table) { return; }
    var sev = box.querySelector("select.f-sev").value;
    var fam = box.querySelector("select.f-fam").value;
    var text = box.querySelector("input.f-text").value.toLowerCase();
    var shown = 0;
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var ok = (sev === "" || r.getAttribute("data-sev") === sev) &&
        (fam === "" || r.getAttribute("data-fam") === fam) &&
        (text === "" || r.textContent.toLowerCase().indexOf(text) >= 0);
      r.classList.toggle("hidden-row", !ok);
      if (ok) { shown += 1; }
    }
    var out = box.querySelector(".f-count");
    if (out) { out.textContent = shown + " of " + rows.length + " rows shown"; }
  }
  var boxes = document.querySelectorAll(".filters");
  for (var b = 0; b < boxes.length; b++) {
    (function (box) {
      var inputs = box.querySelectorAll("select, input");
      for (var k = 0; k < inputs.length; k++) {
        inputs[k].addEventListener("input", function () { applyFilter(box); });
        inputs[k].addEventListener("change", function () { applyFilter(box); });
      }
      applyFilter(box);
    })(boxes[b]);
  }
  function sortBy(table, col, numeric, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-key") || a.cells[col].textContent;
      var y = b.cells[col].getAttribute("data-key") || b.cells[col].textContent;
      var c;
      if (numeric) {
        c = (Number(x) || 0) - (Number(y) || 0);
      } else {
        c = x < y ? -1 : (x > y ? 1 : 0);
      }
      return c * dir;
    });
    for (var i = 0; i < rows.length; i++) { body.appendChild(rows[i]); }
  }
  var heads = document.querySelectorAll("th.sortable");
  for (var h = 0; h < heads.length; h++) {
    heads[h].addEventListener("click", function (ev) {
      var th = ev.currentTarget;
      var table = th.closest("table");
      var dir = th.getAttribute("data-dir") === "1" ? -1 : 1;
      th.setAttribute("data-dir", String(dir));
      sortBy(table, th.cellIndex, th.getAttribute("data-num") === "1", dir);
    });
  }
  // "map" links: put a cursor on the file map at the finding's offset.
  var links = document.querySelectorAll("a.to-map");
  for (var l = 0; l < links.length; l++) {
    links[l].addEventListener("click", function (ev) {
      var a = ev.currentTarget;
      var svg = document.getElementById(a.getAttribute("href").slice(1));
      if (!svg) { return; }
      var span = Number(svg.getAttribute("data-span")) || 1;
      var width = Number(svg.getAttribute("data-width")) || 1000;
      var off = Number(a.getAttribute("data-off")) || 0;
      var cur = svg.querySelector(".cursor");
      if (cur) {
        var x = Math.min(width, off / span * width);
        cur.setAttribute("x", String(Math.max(0, x - 2)));
        cur.setAttribute("visibility", "visible");
      }
    });
  }
  // Map marks link to a finding row: highlight it when followed.
  window.addEventListener("hashchange", function () {
    var old = document.querySelectorAll("tr.flash");
    for (var i = 0; i < old.length; i++) { old[i].classList.remove("flash"); }
    var id = decodeURIComponent(location.hash.slice(1));
    var row = id ? document.getElementById(id) : null;
    if (row && row.tagName === "TR") {
      row.classList.remove("hidden-row");
      row.classList.add("flash");
    }
  });
  document.body.setAttribute("data-script", "ok");
})();
