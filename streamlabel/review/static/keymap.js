// streamlabel review: keyboard shortcuts. Keys are declared once in the page as data-key (and data-help) on the
// element they click; this script finds that element and clicks it. Arrow keys move the focus between queue cards.
// No eval, no inline handlers added, no dependencies.
(function () {
  "use strict";

  var NAMES = { ArrowRight: "→", ArrowLeft: "←", Escape: "Esc", Enter: "Enter" };

  function cards() { return Array.prototype.slice.call(document.querySelectorAll(".card")); }
  function focused() { return document.querySelector(".card.focused"); }

  function focusCard(card) {
    var old = focused();
    if (old) { old.classList.remove("focused"); }
    if (card) {
      card.classList.add("focused");
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }
  }

  function moveFocus(step) {
    var all = cards();
    if (!all.length) { return false; }
    var at = all.indexOf(focused());
    var next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), all.length - 1);
    focusCard(all[next]);
    return true;
  }

  function columns() {
    var all = cards();
    if (all.length < 2) { return 1; }
    var top = all[0].offsetTop, n = 0;
    while (n < all.length && all[n].offsetTop === top) { n += 1; }
    return Math.max(n, 1);
  }

  function target(key) {
    var card = focused();
    var selector = '[data-key="' + CSS.escape(key) + '"]';
    var inCard = card ? card.querySelector(selector) : null;
    if (inCard) { return inCard; }
    var found = document.querySelectorAll(selector);
    for (var i = 0; i < found.length; i += 1) {
      if (!found[i].closest(".card")) { return found[i]; }
    }
    return null;
  }

  function toggleHelp() {
    var dialog = document.getElementById("help");
    if (!dialog) { return; }
    if (dialog.open) { dialog.close(); return; }
    var rows = [], seen = {};
    if (cards().length) { rows.push(["← → ↑ ↓", "move between items"]); }
    document.querySelectorAll("[data-key][data-help]").forEach(function (el) {
      var key = el.getAttribute("data-key");
      if (seen[key]) { return; }
      seen[key] = true;
      rows.push([NAMES[key] || key, el.getAttribute("data-help")]);
    });
    var table = document.getElementById("help-keys");
    table.textContent = "";
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      var k = document.createElement("td"), kbd = document.createElement("kbd"), what = document.createElement("td");
      kbd.textContent = row[0];
      what.textContent = row[1];
      k.appendChild(kbd);
      tr.appendChild(k);
      tr.appendChild(what);
      table.appendChild(tr);
    });
    dialog.showModal();
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" && event.target.type !== "checkbox" || tag === "SELECT" || tag === "TEXTAREA") { return; }
    var dialog = document.getElementById("help");
    if (dialog && dialog.open) { if (event.key === "?") { dialog.close(); event.preventDefault(); } return; }
    if (event.key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (cards().length) {
      var steps = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns() };
      if (event.key in steps) { moveFocus(steps[event.key]); event.preventDefault(); return; }
    }
    var el = target(event.key);
    if (!el) { return; }
    event.preventDefault();
    el.click();
  }

  // A card the pointer clicks becomes the focused one; after a card leaves (decided), its successor is focused.
  document.addEventListener("click", function (event) {
    var card = event.target.closest && event.target.closest(".card");
    if (card) { focusCard(card); }
  });
  // A swapped-out card no longer reaches document with htmx's events, so watch the DOM instead.
  var focusIndex = 0;
  document.addEventListener("htmx:beforeSwap", function () { focusIndex = Math.max(cards().indexOf(focused()), 0); });
  function refocus() {
    if (focused()) { focusIndex = cards().indexOf(focused()); return; }
    var all = cards();
    if (all.length) { focusCard(all[Math.min(focusIndex, all.length - 1)]); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    refocus();
    new MutationObserver(refocus).observe(document.body, { childList: true, subtree: true });
  });
  document.addEventListener("keydown", onKey);
  window.streamlabelKeys = { toggleHelp: toggleHelp };
})();
