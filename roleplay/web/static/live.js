// The live call and calibration pages: the button posts with fetch (the form works without this
// file too), and server-sent events from /call/events update the status, the elapsed time, who
// speaks and the meters several times a second until the call or recording is over.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var form = root.querySelector("form[data-live-form]");
  var button = form ? form.querySelector("button") : null;
  var source = null;
  var busy = false;

  function byId(id) { return document.getElementById(id); }

  function setText(id, text) {
    var el = byId(id);
    if (el && text !== undefined && el.textContent !== text) { el.textContent = text; }
  }

  function setStatus(text) { setText("live-status", text); }

  // A running call: the same button now hangs up (it keeps the keyboard focus).
  function toHangUp() {
    if (!form || !root.dataset.hangupAction) { return; }
    form.action = root.dataset.hangupAction;
    button.textContent = root.dataset.hangupLabel;
    button.classList.add("hangup");
  }

  function update(d) {
    setStatus(d.status_text);
    setText("live-elapsed", d.elapsed);
    var who = byId("live-who");
    if (who && d.who) { who.dataset.who = d.who; setText("live-who", d.who_text); }
    var level = byId("live-level");
    if (level && d.level_pct !== undefined) { level.value = d.level_pct; }
    var anger = byId("live-anger");
    if (anger && d.anger !== undefined) {
      anger.value = d.anger;
      setText("live-anger-value", d.anger.toFixed(1));
    }
    if (d.state === "in_call" || d.state === "preparing") { toHangUp(); }
    if (button && (d.state === "analysing" || (d.kind === "calibration" && d.state !== "done" && d.state !== "failed"))) {
      button.setAttribute("aria-disabled", "true");
    }
  }

  function listen() {
    if (source) { return; }
    source = new EventSource("/call/events");
    source.onmessage = function (message) {
      var d = JSON.parse(message.data);
      update(d);
      if (["done", "failed", "idle", "busy"].indexOf(d.state) >= 0) {
        source.close();
        source = null;
        if (button) { button.removeAttribute("aria-disabled"); }
        if (d.redirect) { window.location.assign(d.redirect); }
      }
    };
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy || button.getAttribute("aria-disabled") === "true") { return; }
      busy = true;
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": root.dataset.csrf, "Accept": "application/json" },
        body: new FormData(form)
      }).then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { setStatus(body.error); return; }
          listen();
        });
      }).catch(function () {
        setStatus(root.dataset.offline);
      }).then(function () { busy = false; });
    });
  }

  if (root.dataset.running === "1") { listen(); }
}());
