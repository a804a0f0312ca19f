/*
 * The review queue: reveal a content link on demand, and keys for a fast queue:
 * j/k next/previous hit, v reveal, n note, c confirm, r reject. Keys are ignored while
 * typing in a field (Escape leaves the field).
 */
(function () {
  "use strict";

  var hits = Array.prototype.slice.call(document.querySelectorAll(".hit"));
  var current = -1;

  function reveal(hit) {
    var ref = hit.querySelector(".ref");
    var button = hit.querySelector(".reveal");
    var shown = ref.classList.toggle("blurred") === false;
    ref.setAttribute("aria-hidden", shown ? "false" : "true");
    button.setAttribute("aria-expanded", shown ? "true" : "false");
    button.textContent = window.HashGuardMessages.t(shown ? "hide" : "reveal");
    var link = ref.querySelector("a");
    if (link) link.tabIndex = shown ? 0 : -1;
  }

  function select(index) {
    if (!hits.length) return;
    current = Math.max(0, Math.min(hits.length - 1, index));
    hits.forEach(function (hit, i) { hit.classList.toggle("selected", i === current); });
    hits[current].focus();
  }

  function decide(verdict) {
    var hit = hits[current];
    if (!hit) return;
    hit.querySelector("button[value=" + verdict + "]").click();
  }

  hits.forEach(function (hit, i) {
    hit.querySelector(".reveal").addEventListener("click", function () { reveal(hit); });
    hit.addEventListener("focusin", function () {
      current = i;
      hits.forEach(function (other, j) { other.classList.toggle("selected", j === i); });
    });
  });

  document.addEventListener("keydown", function (event) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (typing) {
      if (event.key === "Escape") event.target.closest(".hit").focus();
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var actions = {
      j: function () { select(current + 1); },
      k: function () { select(current - 1); },
      v: function () { if (hits[current]) reveal(hits[current]); },
      n: function () { if (hits[current]) hits[current].querySelector("input[name=note]").focus(); },
      c: function () { decide("confirm"); },
      r: function () { decide("reject"); },
    };
    var action = actions[event.key];
    if (action) {
      event.preventDefault();
      if (current < 0 && event.key !== "j" && event.key !== "k") select(0);
      action();
    }
  });

  if (hits.length) select(0);
})();
