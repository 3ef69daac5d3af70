// Student chat: post a question, then follow its answer as Server-Sent Events (token events, then done).
// A reloaded page resumes every unfinished answer from the text it already shows.
(function () {
  "use strict";
  var chat = document.getElementById("chat");
  var form = document.getElementById("ask-form");
  if (!chat || !form) { return; }
  var streamUrl = form.getAttribute("data-stream-url");
  var FINISHED = { done: true, blocked: true, refused: true, failed: true };

  // Offsets are counted in code points, as the server counts them (an emoji is one, not two UTF-16 units).
  function points(text) { return Array.from(text); }

  function urlFor(template, id) { return template.replace(/\/0(\/|$)/, "/" + id + "$1"); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text) { node.textContent = text; }
    return node;
  }

  function renderSources(box, sources) {
    var holder = box.querySelector(".sources");
    holder.textContent = "";
    if (!sources || !sources.length) { return; }
    holder.appendChild(document.createTextNode("参考："));
    sources.forEach(function (s, i) {
      holder.appendChild(el("span", "source", "［资料" + (i + 1) + "］" + s.title));
    });
  }

  function finish(box, state) {
    box.querySelector(".answer").textContent = state.answer || "";
    box.querySelector(".notice").textContent = state.notice || "";
    renderSources(box, state.sources);
    box.setAttribute("data-status", state.status);
  }

  function follow(box) {
    var id = box.getAttribute("data-turn");
    var answer = box.querySelector(".answer");
    var source = new EventSource(urlFor(streamUrl, id) + "?from=" + points(answer.textContent).length);
    source.addEventListener("token", function (event) {
      var piece = JSON.parse(event.data);
      answer.textContent = points(answer.textContent).slice(0, piece.offset).join("") + piece.text;
      if (!FINISHED[box.getAttribute("data-status")]) { box.setAttribute("data-status", "streaming"); }
    });
    source.addEventListener("done", function (event) {
      source.close();
      finish(box, JSON.parse(event.data));
    });
  }

  function addTurn(state) {
    var box = el("div", "turn");
    box.setAttribute("data-turn", state.id);
    box.setAttribute("data-status", state.status);
    var question = el("p", "question");
    question.appendChild(el("strong", "", "我："));
    question.appendChild(document.createTextNode(state.question));
    box.appendChild(question);
    box.appendChild(el("div", "answer pre", state.answer));
    box.appendChild(el("p", "notice", state.notice || ""));
    box.appendChild(el("p", "sources"));
    chat.appendChild(box);
    return box;
  }

  Array.prototype.forEach.call(chat.querySelectorAll(".turn"), function (box) {
    if (!FINISHED[box.getAttribute("data-status")]) { follow(box); }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var error = document.getElementById("ask-error");
    error.textContent = "";
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok) { error.textContent = result.body.error || "提问失败，请稍后再试。"; return; }
        form.querySelector("textarea").value = "";
        var box = addTurn(result.body);
        if (result.body.finished) { finish(box, result.body); } else { follow(box); }
      })
      .catch(function () { error.textContent = "网络错误，请稍后再试。"; })
      .then(function () { button.disabled = false; });
  });
}());
