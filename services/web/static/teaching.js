// 备课 pages: while a 立意 analysis, a 素材 pick or a 教案 is being generated, poll its JSON and reload once done.
(function () {
  "use strict";
  var box = document.querySelector("[data-poll-url]");
  if (!box || box.getAttribute("data-pending") !== "true") { return; }
  var url = box.getAttribute("data-poll-url");

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && !data.pending) { window.location.reload(); return; }
        window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1500);
}());
