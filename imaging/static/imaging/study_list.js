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

  document.addEventListener("clinicnet:event", onEvent);
  // Events sent while the socket was down are lost: reload what is shown.
  // …and so are those sent between rendering this page and the socket opening.
  for (const name of ["clinicnet:connected", "clinicnet:reconnected"]) {
    document.addEventListener(name, () => {
      if (rows) refreshRows();
    });
  }

  // Keyboard navigation of the worklist: the selected row keeps its place
  // across live refreshes by its study UID.
  let selected = null;
  function rowsNow() {
    return rows ? Array.from(rows.querySelectorAll("tbody tr[data-study]")) : [];
  }
  function select(row) {
    for (const other of rowsNow()) other.classList.remove("selected");
    if (!row) return;
    row.classList.add("selected");
    row.focus({ preventScroll: false });
    selected = row.dataset.study;
  }
  function move(step) {
    const all = rowsNow();
    if (!all.length) return;
    const index = all.findIndex((row) => row.dataset.study === selected);
    const next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
    select(all[next]);
  }
  document.addEventListener("keydown", (event) => {
    if (!rows) return;
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement && document.activeElement.tagName);
    if (typing) {
      if (event.key === "Escape") document.activeElement.blur();
      return;
    }
    const current = rowsNow().find((row) => row.dataset.study === selected);
    if (event.key === "ArrowDown" || event.key === "j") {
      move(1);
      event.preventDefault();
    } else if (event.key === "ArrowUp" || event.key === "k") {
      move(-1);
      event.preventDefault();
    } else if (event.key === "Enter" && current) {
      window.location.href = current.dataset.viewer;
    } else if (event.key === "o" && current) {
      window.location.href = current.dataset.page;
    } else if (event.key === "/") {
      const search = document.getElementById("q");
      if (search) {
        search.focus();
        event.preventDefault();
      }
    }
  });
  if (rows) {
    rows.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-study]");
      if (row && !event.target.closest("a")) select(row);
    });
    new MutationObserver(() => {
      const again = rowsNow().find((row) => row.dataset.study === selected);
      if (again) again.classList.add("selected");
    }).observe(rows, { childList: true });
  }
})();
