// The scenario editor: validation while typing (the server's own validator, 400 ms after the last
// key), jumping to the line of a problem, and a spoken preview of a caller line.
"use strict";
(function () {
  const form = document.getElementById("editor-form");
  if (!form) return;
  const text = document.getElementById("text");
  const box = document.getElementById("validation");
  const gotoLine = document.getElementById("goto-line");
  const csrf = form.dataset.csrf;
  let timer = null;
  let problemLine = null;
  let asked = 0;

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body),
    });
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
  }

  // "Regel 12: ..." where the problem has a line; an empty text has none: the message alone
  function problemText(result) {
    const m = result.message;
    return result.line ? fill(form.dataset.line, {line: result.line, message: m}) : m.charAt(0).toUpperCase() + m.slice(1);
  }

  async function validate() {
    const mine = ++asked;
    try {
      const response = await post("/api/scenarios/validate", {text: text.value});
      if (mine !== asked) return; // a newer check is on its way
      if (!response.ok) throw new Error(String(response.status));
      const result = await response.json();
      problemLine = result.ok ? null : result.line;
      text.setAttribute("aria-invalid", result.ok ? "false" : "true");
      box.classList.toggle("invalid", !result.ok);
      box.textContent = result.ok ? fill(form.dataset.ok, {id: result.id}) : problemText(result);
      gotoLine.hidden = !problemLine;
      if (result.ok && !lineInput.value) lineInput.placeholder = result.opening;
    } catch (err) {
      if (mine === asked) box.textContent = form.dataset.failed;
    }
  }

  text.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(validate, 400);
  });

  gotoLine.addEventListener("click", () => {
    if (!problemLine) return;
    const lines = text.value.split("\n");
    const start = lines.slice(0, problemLine - 1).reduce((n, l) => n + l.length + 1, 0);
    text.focus();
    text.setSelectionRange(start, start + (lines[problemLine - 1] || "").length);
    const lineHeight = text.scrollHeight / Math.max(lines.length, 1);
    text.scrollTop = Math.max(0, (problemLine - 3) * lineHeight);
  });

  const preview = document.getElementById("preview");
  const lineInput = document.getElementById("preview-line");
  const anger = document.getElementById("preview-anger");
  const angerValue = document.getElementById("preview-anger-value");
  const play = document.getElementById("preview-play");
  const status = document.getElementById("preview-status");
  const audio = document.getElementById("preview-audio");
  anger.addEventListener("input", () => { angerValue.textContent = anger.value; });

  play.addEventListener("click", async () => {
    play.disabled = true;
    status.textContent = preview.dataset.busy;
    try {
      const response = await post("/api/scenarios/preview",
        {text: text.value, line: lineInput.value, anger: Number(anger.value)});
      if (!response.ok) {
        const result = await response.json().catch(() => null);
        status.textContent = result && result.message ? problemText(result) : preview.dataset.failed;
        return;
      }
      const blob = await response.blob();
      if (audio.src) URL.revokeObjectURL(audio.src);
      audio.src = URL.createObjectURL(blob);
      status.textContent = preview.dataset.ready;
      await audio.play().catch(() => {});
    } catch (err) {
      status.textContent = preview.dataset.failed;
    } finally {
      play.disabled = false;
    }
  });

  validate();
})();
