// agentkit trajectory viewer: fold/unfold, filter by role and text. No network, no dependencies.
(function () {
  "use strict";
  var body = document.body;
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  function setOpen(open) { all("main details, details.prompt").forEach(function (d) { d.open = open; }); }
  all("[data-act]").forEach(function (b) {
    b.addEventListener("click", function () { setOpen(b.getAttribute("data-act") === "expand"); });
  });
  all("input[data-role]").forEach(function (box) {
    box.addEventListener("change", function () { body.classList.toggle("hide-" + box.getAttribute("data-role"), !box.checked); });
  });
  var cards = all("main .card"), texts = null, timer = null;
  var filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = filter.value.trim().toLowerCase();
        if (texts === null) { texts = cards.map(function (c) { return c.textContent.toLowerCase(); }); }
        cards.forEach(function (c, i) { c.classList.toggle("hidden", q !== "" && texts[i].indexOf(q) < 0); });
      }, 120);
    });
  }
  if (location.hash) { var t = document.getElementById(location.hash.slice(1)); if (t) { t.scrollIntoView(); } }
  body.setAttribute("data-ready", "1");
}());
