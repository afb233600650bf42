// Study list and study page: follow "study.updated" events from /ws/events/
// (clinicnet/static/clinicnet/events.js turns them into "clinicnet:event" DOM
// events) so that new studies and finished previews show without a reload.
(function () {
  "use strict";

  const rows = document.getElementById("study-rows");
  const studyCard = document.getElementById("study");
  let timer = null;

  function refreshRows() {
    fetch(rows.dataset.fragmentUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        rows.innerHTML = html;
        document.body.dataset.studyListRefreshed = String(Date.now());
      })
      .catch(() => {});
  }

  function onEvent(event) {
    const message = event.detail || {};
    if (message.type !== "study.updated") return;
    if (rows) {
      // Several events arrive while a study is being rendered; refresh once.
      clearTimeout(timer);
      timer = setTimeout(refreshRows, 250);
    }
    if (studyCard && message.study === studyCard.dataset.study && message.status !== studyCard.dataset.status) {
      clearTimeout(timer);
      timer = setTimeout(() => window.location.reload(), 250);
    }
  }

  window.addEventListener("clinicnet:event", onEvent);
})();
