/* ClinicNet live events: one websocket per page at /ws/events/.
 *
 * Every message from the server is re-dispatched on `document` as a DOM
 * CustomEvent "clinicnet:event" whose `detail` is the event object
 * ({type, op, ...}; see clinicnet/events.py and the apps' docs). Pages listen:
 *
 *   document.addEventListener("clinicnet:event", (e) => { if (e.detail.type === "...") ... });
 *
 * "clinicnet:connected" is dispatched each time the socket opens ({reconnected}):
 * events sent before that moment were not seen, so a page that shows live state
 * checks it then (a page rendered just before an event is the same case).
 * After a lost connection comes back, "clinicnet:reconnected" is dispatched too.
 * The socket reconnects with exponential backoff (1 s doubling to 30 s, with
 * jitter), except when the server closed it because access ended (4403).
 */
(function () {
  "use strict";
  if (window.clinicnetEvents) return; // included twice: one socket is enough

  var CLOSE_ACCESS_ENDED = 4403;
  var PING_MS = 25000;
  var MAX_DELAY_MS = 30000;
  var socket = null;
  var attempts = 0;
  var everConnected = false;
  var pingTimer = null;
  var retryTimer = null;

  function dispatch(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function url() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/ws/events/";
  }

  function scheduleReconnect() {
    var delay = Math.min(MAX_DELAY_MS, 1000 * Math.pow(2, attempts));
    delay = delay / 2 + Math.random() * (delay / 2);
    attempts += 1;
    retryTimer = window.setTimeout(connect, delay);
  }

  function connect() {
    retryTimer = null;
    try {
      socket = new WebSocket(url());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", function () {
      attempts = 0;
      api.connected = true;
      dispatch("clinicnet:connected", { reconnected: everConnected });
      if (everConnected) dispatch("clinicnet:reconnected", {});
      everConnected = true;
      pingTimer = window.setInterval(function () {
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_MS);
    });
    socket.addEventListener("message", function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (!event || typeof event.type !== "string" || event.type === "pong") return;
      dispatch("clinicnet:event", event);
    });
    socket.addEventListener("close", function (closed) {
      api.connected = false;
      if (pingTimer) window.clearInterval(pingTimer);
      pingTimer = null;
      socket = null;
      if (closed.code === CLOSE_ACCESS_ENDED) {
        dispatch("clinicnet:access-ended", {});
        return;
      }
      scheduleReconnect();
    });
  }

  var api = { connected: false };
  window.clinicnetEvents = api;
  // Reconnect at once when the network comes back instead of waiting out the backoff.
  window.addEventListener("online", function () {
    if (retryTimer) {
      window.clearTimeout(retryTimer);
      attempts = 0;
      connect();
    }
  });
  connect();
})();
