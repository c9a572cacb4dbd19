// streamlabel review: adding a part the pipeline missed. In box mode (key b) the person drags a box on the frame;
// SAM2 segments inside it and the mask is drawn; "Add this part" (or Enter) sends it, and the new item's page opens
// (where u undoes the add). No eval; the CSRF token is read from <body hx-headers>.
(function () {
  "use strict";

  var frame, stage, svg, img, panel, start = null, box = null, polygon = null, busy = false;
  var NS = "http://www.w3.org/2000/svg";

  function csrf() { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }

  function imagePoint(event) {
    // The image is drawn "contain": find where its pixels are inside the element's box; clamp to the image.
    var rect = img.getBoundingClientRect();
    var scale = Math.min(rect.width / img.naturalWidth, rect.height / img.naturalHeight);
    var left = rect.left + (rect.width - img.naturalWidth * scale) / 2;
    var top = rect.top + (rect.height - img.naturalHeight * scale) / 2;
    var x = (event.clientX - left) / (img.naturalWidth * scale), y = (event.clientY - top) / (img.naturalHeight * scale);
    return [Math.min(Math.max(x, 0), 1), Math.min(Math.max(y, 0), 1)];
  }

  function draw() {
    var w = img.naturalWidth, h = img.naturalHeight;
    svg.querySelectorAll(".drawn").forEach(function (el) { el.remove(); });
    if (box) {
      var rect = document.createElementNS(NS, "rect");
      rect.setAttribute("class", "drawn box-drawn");
      rect.setAttribute("x", box[0] * w);
      rect.setAttribute("y", box[1] * h);
      rect.setAttribute("width", (box[2] - box[0]) * w);
      rect.setAttribute("height", (box[3] - box[1]) * h);
      svg.appendChild(rect);
    }
    if (polygon) {
      var poly = document.createElementNS(NS, "polygon");
      poly.setAttribute("class", "drawn mask-fixed");
      poly.setAttribute("points", polygon.map(function (p) { return (p[0] * w) + "," + (p[1] * h); }).join(" "));
      svg.appendChild(poly);
    }
    panel.querySelector("[data-box-accept]").disabled = !polygon || busy;
  }

  function say(text) { panel.querySelector(".box-status").textContent = text; }

  function post(url, fields) {
    return fetch(url, { method: "POST", body: new URLSearchParams(fields), headers: { "X-CSRF-Token": csrf() } })
      .then(function (r) {
        return r.text().then(function (text) {
          var data = null;
          try { data = JSON.parse(text); } catch (e) { data = { error: text.replace(/<[^>]*>/g, "").trim() }; }
          return [r.status, data];
        });
      });
  }

  function segment() {
    say("asking SAM2 …");
    post(frame.dataset.boxUrl, { box: JSON.stringify(box) })
      .then(function (answer) {
        if (answer[0] === 200) { polygon = answer[1].polygon; say("mask ready: add it (Enter), or drag another box"); }
        else { polygon = null; say(answer[1].error || "no mask"); }
        draw();
      })
      .catch(function () { say("the server did not answer"); });
  }

  function down(event) {
    if (!frame.classList.contains("boxing") || event.button !== 0) { return; }
    event.preventDefault();
    start = imagePoint(event);
    box = null;
    polygon = null;
    draw();
  }

  function move(event) {
    if (!start) { return; }
    var p = imagePoint(event);
    box = [Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.max(start[0], p[0]), Math.max(start[1], p[1])];
    draw();
  }

  function up(event) {
    if (!start) { return; }
    move(event);
    start = null;
    if (!box || (box[2] - box[0]) * img.naturalWidth < 3 || (box[3] - box[1]) * img.naturalHeight < 3) {
      box = null;
      draw();
      say("drag a box around the part (press, move, release)");
      return;
    }
    segment();
  }

  function toggle() {
    frame.classList.toggle("boxing");
    panel.hidden = !frame.classList.contains("boxing");
    box = null;
    polygon = null;
    draw();
    say(panel.hidden ? "" : "drag a box around the part the pipeline missed");
  }

  function accept() {
    if (!polygon || busy) { return; }
    busy = true;
    draw();
    say("adding …");
    post(frame.dataset.addUrl, { polygon: JSON.stringify(polygon) }).then(function (answer) {
      if (answer[0] === 200) { window.location.assign(answer[1].url); return; }
      busy = false;
      draw();
      say(answer[1].error || "refused");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    frame = document.getElementById("frame");
    panel = document.getElementById("box-panel");
    if (!frame || !panel) { return; }
    stage = frame.querySelector(".stage");
    svg = frame.querySelector("svg");
    img = frame.querySelector("img");
    stage.addEventListener("mousedown", down);
    document.addEventListener("mousemove", move);
    document.addEventListener("mouseup", up);
    document.querySelectorAll("[data-box-toggle]").forEach(function (el) { el.addEventListener("click", toggle); });
    panel.querySelector("[data-box-accept]").addEventListener("click", accept);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && frame.classList.contains("boxing")) { event.preventDefault(); accept(); }
    });
  });
})();
