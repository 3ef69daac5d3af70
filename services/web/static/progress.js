// Live grading progress: poll the assignment's progress.json and update the bar, counts, rate and ETA.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box) { return; }
  var url = box.getAttribute("data-url");
  var delay = 2000;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "估算中"; }
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) { return "约 " + h + " 小时 " + m + " 分"; }
    if (m) { return "约 " + m + " 分 " + s + " 秒"; }
    return "约 " + s + " 秒";
  }

  // Teachers get one line about a current fault (or no live worker); admins also get each row's detail.
  function renderWorkers(workers, notice) {
    var holder = document.getElementById("workers");
    if (!holder) { return; }
    holder.textContent = "";
    if (notice) {
      var line = document.createElement("div");
      line.className = workers.some(function (w) { return w.failed; }) ? "alarm" : "warn";
      line.setAttribute("role", "alert");
      line.textContent = notice;
      holder.appendChild(line);
    }
    if (!workers.length) { return; }
    var list = document.createElement("ul");
    list.className = "workers";
    workers.forEach(function (w) {
      var li = document.createElement("li");
      li.className = "worker worker-" + w.state;
      li.textContent = w.id + "（" + w.queues + "）：" + w.state_name + (w.model ? " · " + w.model : "") +
        (w.device ? " · " + w.device : "");
      if (w.detail) {
        var detail = document.createElement("pre");
        detail.className = "worker-detail";
        detail.textContent = w.detail;
        li.appendChild(detail);
      }
      list.appendChild(li);
    });
    holder.appendChild(list);
  }

  function render(p) {
    var bar = document.getElementById("progress-bar");
    if (bar) { bar.value = p.percent; bar.textContent = p.percent + "%"; }
    text("progress-percent", p.percent + "%");
    text("p-total", p.total);
    text("p-graded", p.graded);
    text("p-grading", p.grading);
    text("p-queued", p.queued);
    text("p-failed", p.failed);
    text("p-rate", p.essays_per_minute ? p.essays_per_minute.toFixed(1) : "—");
    text("p-eta", p.total && !p.finished ? duration(p.eta_seconds) : "—");
    text("p-state", !p.total ? "尚未上传作文" : (p.finished ? "已全部完成" : "评分进行中，本页自动刷新"));
    renderWorkers(p.workers || [], p.worker_notice);
    var ahead = document.getElementById("p-ahead");
    if (ahead) { ahead.hidden = !p.ahead; }
    text("p-ahead-count", p.ahead || 0);
    renderWorkbook(p.workbook);
  }

  // The class workbook is made by itself once grading ends: its link appears here when the file is written.
  function renderWorkbook(w) {
    var link = document.getElementById("workbook-link");
    text("workbook-state", !w ? "全部评完后自动生成" :
      (w.updating ? "已完成（正在生成加入训练计划的新版本，完成后链接自动更新）" : w.status_name));
    if (!link) { return; }
    if (w && w.ready && w.download_url) {
      link.href = w.download_url;
      link.hidden = false;
    } else {
      link.hidden = true;
    }
  }

  // Polling goes on after grading until the workbook is ready or has failed.
  function settled(p) {
    if (!(p.total && p.finished)) { return false; }
    var w = p.workbook;
    return Boolean(w) && ((w.ready && !w.updating) || w.status === "failed");
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (p) {
        render(p);
        delay = 2000;
        if (!settled(p)) { window.setTimeout(poll, delay); }
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        text("p-state", "暂时无法获取进度，稍后重试…");
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, 500);
}());
