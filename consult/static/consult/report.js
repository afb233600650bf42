/* The report editor: autosave (debounced POST of the draft, "saved at hh:mm"),
 * and switching the template while the text is still the untouched template.
 */
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) return;
  var status = document.getElementById("report-save-status");
  var templates = JSON.parse(document.getElementById("report-templates").textContent);
  var findings = form.elements.namedItem("findings");
  var kind = form.elements.namedItem("kind");
  var csrf = form.elements.namedItem("csrfmiddlewaretoken").value;
  var timer = null;
  var inFlight = null;
  var dirty = false;
  var DEBOUNCE_MS = 800;

  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle("danger", Boolean(bad));
  }

  function save() {
    timer = null;
    if (inFlight) {
      // One request at a time; save again when the current one is answered.
      inFlight.then(save);
      return inFlight;
    }
    dirty = false;
    say(status.dataset.saving);
    var body = new FormData(form);
    inFlight = fetch(form.dataset.draftUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf },
    })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || response.statusText);
          say(status.dataset.savedAt.replace("__TIME__", data.saved_at));
          form.dataset.saved = data.saved_at_iso;
        });
      })
      .catch(function (error) {
        dirty = true;
        say(status.dataset.failed + " " + error.message, true);
      })
      .finally(function () {
        inFlight = null;
      });
    return inFlight;
  }

  function changed() {
    dirty = true;
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(save, DEBOUNCE_MS);
  }

  var lastKind = kind ? kind.value : "";
  if (kind) {
    kind.addEventListener("change", function () {
      // Replace the text only while it is still the previous template (or empty).
      var untouched = findings.value.trim() === "" || findings.value.trim() === (templates[lastKind] || "").trim();
      if (untouched) findings.value = templates[kind.value] || "";
      lastKind = kind.value;
      changed();
    });
  }
  form.addEventListener("input", function (event) {
    if (event.target !== kind) changed();
  });
  // Signing posts the form itself (the server saves it first), so nothing typed is lost.
  form.addEventListener("submit", function () {
    if (timer) window.clearTimeout(timer);
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty || inFlight) {
      if (timer) save();
      event.preventDefault();
    }
  });
})();
