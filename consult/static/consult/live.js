/* Consultation notifications on every page: the unread count in the navigation,
 * a toast for ordinary news and, for a new EMERGENCY request, a red banner that
 * stays until dismissed plus an alarm tone made with WebAudio (no audio file).
 * Listens to the "clinicnet:event" DOM events of clinicnet/events.js.
 */
(function () {
  "use strict";
  var root = document.getElementById("consult-alerts");
  if (!root) return;
  var labels = root.dataset;
  var audio = null;

  // Browsers only let a page make sound after the person interacted with it:
  // create the audio context on the first click or key press.
  function unlockAudio() {
    if (audio) return;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    audio = new Context();
  }
  document.addEventListener("pointerdown", unlockAudio, { once: true, capture: true });
  document.addEventListener("keydown", unlockAudio, { once: true, capture: true });

  function alarm() {
    unlockAudio();
    if (!audio) return;
    if (audio.state === "suspended") audio.resume();
    var start = audio.currentTime + 0.05;
    // Three rising two-tone pulses, twice: unlike any ordinary notification sound.
    for (var round = 0; round < 2; round++) {
      for (var i = 0; i < 3; i++) {
        var at = start + round * 1.4 + i * 0.36;
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.type = "square";
        osc.frequency.setValueAtTime(880, at);
        osc.frequency.setValueAtTime(1320, at + 0.14);
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
        osc.connect(gain).connect(audio.destination);
        osc.start(at);
        osc.stop(at + 0.32);
      }
    }
  }

  function setUnread(count) {
    document.querySelectorAll("[data-consult-unread]").forEach(function (badge) {
      badge.textContent = String(count);
      badge.hidden = count <= 0;
    });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function show(event) {
    var emergency = event.emergency && event.kind === "consultation.new";
    var box = element("div", emergency ? "consult-alert emergency" : "consult-alert", "");
    box.setAttribute("role", emergency ? "alert" : "status");
    box.dataset.consultation = event.consultation;
    if (emergency) box.appendChild(element("strong", "consult-alert-title", labels.emergency));
    box.appendChild(element("span", "consult-alert-text", event.text));
    var open = element("a", "button small", labels.open);
    open.href = event.url;
    box.appendChild(open);
    var dismiss = element("button", "small", labels.dismiss);
    dismiss.type = "button";
    dismiss.addEventListener("click", function () {
      box.remove();
    });
    box.appendChild(dismiss);
    root.prepend(box);
    if (emergency) {
      alarm();
    } else {
      window.setTimeout(function () {
        box.remove();
      }, 10000);
    }
  }

  function refreshUnread() {
    fetch(labels.unreadUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (data) setUnread(data.unread);
      })
      .catch(function () {});
  }

  document.addEventListener("clinicnet:event", function (e) {
    var event = e.detail;
    if (event.type !== "notification") return;
    if (typeof event.unread === "number") setUnread(event.unread);
    if (event.op === "created") show(event);
  });
  document.addEventListener("clinicnet:reconnected", refreshUnread);
})();
