// A call with this computer's microphone and speaker: the page asks for the microphone (echo
// cancellation on; automatic volume and noise suppression off, so the trainee's loudness can be
// measured), runs browser_call_worklet.js, and talks to the server over a WebSocket: numbered
// microphone frames up, the caller's audio and the call's status down.
(function () {
  "use strict";
  var root = document.getElementById("browser-call");
  if (!root) { return; }
  var button = document.getElementById("call-button");
  var ws = null, context = null, node = null, media = null;
  var finished = false;
  // echo cancellation on; automatic volume and noise suppression off (loudness stays measurable)
  var AUDIO = { channelCount: 1, echoCancellation: true, autoGainControl: false, noiseSuppression: false };

  function byId(id) { return document.getElementById(id); }
  function setText(id, text) {
    var el = byId(id);
    if (el && text !== undefined && el.textContent !== text) { el.textContent = text; }
  }

  function update(d) {
    setText("live-status", d.status_text);
    setText("live-elapsed", d.elapsed);
    var who = byId("live-who");
    if (who && d.who) { who.dataset.who = d.who; setText("live-who", d.who_text); }
    if (byId("live-level") && d.level_pct !== undefined) { byId("live-level").value = d.level_pct; }
    if (byId("live-anger") && d.anger !== undefined) {
      byId("live-anger").value = d.anger;
      setText("live-anger-value", d.anger.toFixed(1));
    }
    if (d.state === "analysing") { button.setAttribute("aria-disabled", "true"); }
    if (d.state === "done" || d.state === "failed") {
      finished = true;
      stopAudio();
      if (d.redirect) { window.location.assign(d.redirect); }
    }
  }

  function stopAudio() {
    if (media) { media.getTracks().forEach(function (track) { track.stop(); }); media = null; }
    if (context) { context.close(); context = null; }
  }

  function frameBytes(seq, pcm) {
    var buffer = new ArrayBuffer(4 + pcm.byteLength);
    new DataView(buffer).setUint32(0, seq, true);
    new Int16Array(buffer, 4).set(new Int16Array(pcm));
    return buffer;
  }

  function onWorklet(event) {
    var d = event.data;
    if (d.type === "frame") {
      var bytes = frameBytes(d.seq, d.pcm);
      if (ws && ws.readyState === WebSocket.OPEN) { ws.send(bytes); }
    } else if (d.type === "late" && ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "late", samples: d.samples }));
    }
  }

  function onServer(event) {
    if (typeof event.data !== "string") {
      var view = new DataView(event.data);
      var samples = new Int16Array(event.data.slice(4));
      node.port.postMessage({ type: "audio", start: view.getUint32(0, true), samples: samples }, [samples.buffer]);
      return;
    }
    var d = JSON.parse(event.data);
    if (d.type === "stop") { if (node) { node.port.postMessage(d); } }
    else if (d.type === "microphone") { microphone(); }
    else if (d.type === "status") { update(d); }
  }

  function microphone() {
    // the server is ready (engine loaded): open the microphone now, so that the call's audio
    // begins a fixed time before the phone rings, whatever the loading took
    return navigator.mediaDevices.getUserMedia({ audio: AUDIO })
      .then(function (stream) {
        media = stream;
        context = new AudioContext({ latencyHint: "interactive" });
        return context.audioWorklet.addModule(root.dataset.worklet);
      }).then(function () {
        node = new AudioWorkletNode(context, "roleplay-call", {
          numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
        node.port.onmessage = onWorklet;
        var settings = media.getAudioTracks()[0].getSettings();
        ws.send(JSON.stringify({ type: "latency", base_s: context.baseLatency || 0,
          output_s: context.outputLatency || 0, input_s: settings.latency || 0 }));
        context.createMediaStreamSource(media).connect(node);
        node.connect(context.destination);
        return context.resume();
      }).catch(function () {
        stopAudio();
        setText("live-status", root.dataset.failed);
        if (ws) { ws.close(); }
      });
  }

  function connected(socketPath) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + window.location.host + socketPath);
    ws.binaryType = "arraybuffer";
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "start", csrf: root.dataset.csrf }));
      button.textContent = root.dataset.hangupLabel;
      button.classList.add("hangup");
    };
    ws.onmessage = onServer;
    ws.onclose = function () {
      if (finished) { return; }
      stopAudio();
      setText("live-status", root.dataset.lost);
      // the server keeps and checks the call so far; the page opened again says how it went
      window.setTimeout(function () { window.location.reload(); }, 3000);
    };
  }

  function start() {
    button.setAttribute("aria-disabled", "true");
    setText("live-status", root.dataset.asking);
    // the permission first (the question comes before the call); the microphone itself is
    // opened again when the server is ready (microphone())
    navigator.mediaDevices.getUserMedia({ audio: AUDIO })
      .then(function (stream) {
        stream.getTracks().forEach(function (track) { track.stop(); });
        return fetch(root.dataset.startAction, { method: "POST", credentials: "same-origin",
          headers: { "X-CSRF-Token": root.dataset.csrf, "Accept": "application/json" } });
      }).then(function (response) {
        if (!response.ok) { throw new Error("start"); }
        return response.json();
      }).then(function (body) {
        button.removeAttribute("aria-disabled");
        connected(body.socket);
      }).catch(function (error) {
        stopAudio();
        button.removeAttribute("aria-disabled");
        setText("live-status", error && error.name === "NotAllowedError" ? root.dataset.denied : root.dataset.failed);
      });
  }

  button.addEventListener("click", function () {
    if (button.getAttribute("aria-disabled") === "true") { return; }
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "hangup" }));
      button.setAttribute("aria-disabled", "true");
    } else if (!ws) {
      start();
    }
  });
  if (root.dataset.waiting === "1") { window.setTimeout(function () { window.location.reload(); }, 3000); }
})();
