// Live progress of a send: polls the page's JSON endpoint until the send stops moving.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box) { return; }
  var url = box.getAttribute("data-url");
  var moving = ["scheduled", "sending"];

  function show(data) {
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var name = el.getAttribute("data-field");
      if (name === "bar") { el.value = data.percent; el.textContent = data.percent + "%"; }
      else if (name in data) { el.textContent = data[name]; }
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        show(data);
        if (moving.indexOf(data.status) >= 0) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 10000); });
  }
  poll();
})();
