// Teamgate dashboard: the CSRF header for htmx, copy buttons, and the streaming playground.
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    var text = source ? source.textContent.trim() : "";
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      document.execCommand("copy");
      done();
    }
  });

  function appendEvents(buffer, answer) {
    // returns the unparsed tail; each complete "data: ..." line adds its delta to the answer
    var lines = buffer.split("\n");
    var tail = lines.pop();
    lines.forEach(function (line) {
      if (line.indexOf("data:") !== 0) return;
      var data = line.slice(5).trim();
      if (!data || data === "[DONE]") return;
      var event = JSON.parse(data);
      if (event.error) { throw new Error(event.error.message); }
      var delta = event.choices && event.choices[0] && event.choices[0].delta;
      if (delta && delta.content) answer.textContent += delta.content;
    });
    return tail;
  }

  async function chat(form) {
    var answer = document.getElementById("pg-answer");
    var status = document.getElementById("pg-status");
    answer.textContent = "";
    status.textContent = "Waiting for the first token…";
    var started = performance.now();
    var body = {model: form.elements.model.value, stream: true,
                messages: [{role: "user", content: form.elements.message.value}]};
    try {
      var response = await fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify(body)});
      if (!response.ok) {
        var failure = await response.json().catch(function () { return {}; });
        throw new Error((failure.error && failure.error.message) || ("HTTP " + response.status));
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer = appendEvents(buffer + decoder.decode(chunk.value, {stream: true}), answer);
        status.textContent = "Streaming…";
      }
      status.textContent = "Done in " + Math.round(performance.now() - started) + " ms.";
    } catch (error) {
      status.textContent = "Error: " + error.message;
    }
  }

  document.addEventListener("submit", function (event) {
    if (event.target.id !== "playground") return;
    event.preventDefault();
    chat(event.target);
  });
})();
