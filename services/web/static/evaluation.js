// An evaluation job's page: poll its progress.json, update the bar, reload once the job has finished.
(function () {
  "use strict";
  var box = document.getElementById("eval-progress");
  if (!box || box.getAttribute("data-finished") === "true") { return; }
  var url = box.getAttribute("data-url");

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { return; }
        document.getElementById("eval-status").textContent = p.status_name;
        document.getElementById("eval-count").textContent = p.total ? "（" + p.done + "/" + p.total + " 篇次）" : "";
        var bar = document.getElementById("eval-bar");
        bar.value = p.percent;
        bar.textContent = p.percent + "%";
        if (p.finished) { window.location.reload(); return; }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
}());
