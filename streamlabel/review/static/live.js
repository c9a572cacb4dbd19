// streamlabel review: the live page's own connection state. The page polls /live with htmx; when a poll fails
// (the server is gone, or answers an error) #connection says "disconnected, retrying" until a poll succeeds again
// (htmx keeps polling). No eval, no dependencies.
(function () {
  "use strict";

  function show(ok, text) {
    var el = document.getElementById("connection");
    if (!el) { return; }
    el.classList.toggle("ok", ok);
    el.classList.toggle("lost", !ok);
    el.textContent = text;
    document.body.classList.toggle("disconnected", !ok);  // the panels fade: what they show may be stale
  }

  function isPoll(event) {
    var elt = event.detail && event.detail.elt;
    return elt && elt.id === "streams";
  }

  document.addEventListener("htmx:sendError", function (event) {
    if (isPoll(event)) { show(false, "● disconnected, retrying"); }
  });
  document.addEventListener("htmx:responseError", function (event) {
    if (isPoll(event)) { show(false, "● the server answered " + event.detail.xhr.status + ", retrying"); }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (isPoll(event) && event.detail.successful) { show(true, "● connected"); }
  });
})();
