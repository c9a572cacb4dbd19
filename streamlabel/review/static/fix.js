// streamlabel review: fixing a mask with clicks on the item page. In fix mode a click on the frame adds a
// positive point (Shift+click or right click: a negative one); every click asks SAM2 for a mask and draws it;
// "Accept fixed mask" sends it as a fix. No eval; the CSRF token is read from <body hx-headers>.
(function () {
  "use strict";

  var frame, svg, img, panel, points = [], polygon = null;

  function csrf() { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }

  function imagePoint(event) {
    // The image is drawn "contain": find where its pixels are inside the element's box.
    var box = img.getBoundingClientRect();
    var scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
    var left = box.left + (box.width - img.naturalWidth * scale) / 2;
    var top = box.top + (box.height - img.naturalHeight * scale) / 2;
    var x = (event.clientX - left) / (img.naturalWidth * scale), y = (event.clientY - top) / (img.naturalHeight * scale);
    return x >= 0 && x <= 1 && y >= 0 && y <= 1 ? [x, y] : null;
  }

  function draw() {
    var w = img.naturalWidth, h = img.naturalHeight, ns = "http://www.w3.org/2000/svg";
    svg.querySelectorAll(".fix").forEach(function (el) { el.remove(); });
    if (polygon) {
      var poly = document.createElementNS(ns, "polygon");
      poly.setAttribute("class", "fix mask-fixed");
      poly.setAttribute("points", polygon.map(function (p) { return (p[0] * w) + "," + (p[1] * h); }).join(" "));
      svg.appendChild(poly);
    }
    points.forEach(function (p) {
      var dot = document.createElementNS(ns, "circle");
      dot.setAttribute("class", "fix " + (p[2] ? "point-pos" : "point-neg"));
      dot.setAttribute("cx", p[0] * w);
      dot.setAttribute("cy", p[1] * h);
      dot.setAttribute("r", Math.max(w, h) / 120);
      svg.appendChild(dot);
    });
    panel.querySelector(".fix-count").textContent = points.length + " point" + (points.length === 1 ? "" : "s");
    panel.querySelector("[data-fix-accept]").disabled = !polygon;
  }

  function say(text) { panel.querySelector(".fix-status").textContent = text; }

  function segment() {
    var body = new URLSearchParams({ points: JSON.stringify(points) });
    say("asking SAM2 …");
    fetch(frame.dataset.segmentUrl, { method: "POST", body: body, headers: { "X-CSRF-Token": csrf() } })
      .then(function (r) { return r.json().then(function (data) { return [r.status, data]; }); })
      .then(function (answer) {
        if (answer[0] === 200) { polygon = answer[1].polygon; say("mask ready: accept it, or click more points"); }
        else { polygon = null; say(answer[1].error || "no mask"); }
        draw();
      })
      .catch(function () { say("the server did not answer"); });
  }

  function click(event) {
    if (!frame.classList.contains("fixing")) { return; }
    event.preventDefault();
    var p = imagePoint(event);
    if (!p) { return; }
    points.push([p[0], p[1], event.shiftKey || event.button === 2 ? 0 : 1]);
    draw();
    segment();
  }

  function toggle() {
    frame.classList.toggle("fixing");
    panel.hidden = !frame.classList.contains("fixing");
    if (panel.hidden) { points = []; polygon = null; draw(); }
  }

  function accept() {
    if (!polygon) { return; }
    var body = new URLSearchParams({ decision: "fix", expect: frame.dataset.expect, polygon: JSON.stringify(polygon) });
    fetch(frame.dataset.decideUrl, { method: "POST", body: body, headers: { "X-CSRF-Token": csrf() } })
      .then(function (r) {
        if (r.ok) { window.location.assign(frame.dataset.after); }
        else { r.text().then(function (t) { say(t.replace(/<[^>]*>/g, "").trim() || "refused"); }); }
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    frame = document.getElementById("frame");
    panel = document.getElementById("fix-panel");
    if (!frame || !panel) { return; }
    svg = frame.querySelector("svg");
    img = frame.querySelector("img");
    frame.querySelector(".stage").addEventListener("click", click);
    frame.querySelector(".stage").addEventListener("contextmenu", click);
    document.querySelectorAll("[data-fix-toggle]").forEach(function (el) { el.addEventListener("click", toggle); });
    panel.querySelector("[data-fix-accept]").addEventListener("click", accept);
    panel.querySelector("[data-fix-clear]").addEventListener("click", function () { points = []; polygon = null; draw(); say(""); });
  });
})();
