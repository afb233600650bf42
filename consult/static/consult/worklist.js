/* Worklists refresh themselves when a consultation they may show changes:
 * the list part of the page is fetched again (?partial=1) and swapped in.
 */
(function () {
  "use strict";
  var list = document.querySelector("[data-live-list]");
  if (!list) return;
  var pending = null;

  function refresh() {
    pending = null;
    var url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    fetch(url, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) list.innerHTML = html;
      })
      .catch(function () {});
  }

  function soon() {
    // Several events in a burst (a transition and its notification) cause one fetch.
    if (pending) window.clearTimeout(pending);
    pending = window.setTimeout(refresh, 250);
  }

  document.addEventListener("clinicnet:event", function (e) {
    if (e.detail.type === "consultation") soon();
  });
  document.addEventListener("clinicnet:connected", soon);
})();
