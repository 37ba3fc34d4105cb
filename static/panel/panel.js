// Keeps "updated Ns ago" honest between polls: if the web server stops answering, the age keeps
// growing and turns red, instead of freezing at the last good value.
(function () {
  "use strict";
  var STALE_AFTER = 3;
  function tick() {
    var el = document.querySelector("[data-age]");
    if (!el || el.dataset.age === "") return;
    // Each poll swaps in a new element, so the first tick that sees it starts its clock.
    if (!el.renderedAt) el.renderedAt = Date.now();
    var age = parseFloat(el.dataset.age) + (Date.now() - el.renderedAt) / 1000;
    el.textContent = "updated " + Math.round(age) + "s ago";
    el.classList.toggle("stale", age > STALE_AFTER);
  }

  // The live area is replaced every 2 s; without this, a keyboard user tabbing to a row's
  // button would be thrown back to the top of the page at every refresh.
  var focusKey = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    focusKey = null;
    if (!active || active === document.body || !event.detail.target.contains(active)) return;
    var holder = active.id ? active : active.closest("[id]");
    if (holder) focusKey = { id: holder.id, testid: active.id ? null : active.dataset.testid || null };
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusKey) return;
    var holder = document.getElementById(focusKey.id);
    var el = holder && (focusKey.testid ? holder.querySelector('[data-testid="' + focusKey.testid + '"]') : holder);
    if (el && el !== document.activeElement) el.focus({ preventScroll: true });
    focusKey = null;
  });

  // Cancel in a dialog closes it without a request; a link, so it still works without JS.
  // Here and not in an hx-on attribute: the Content-Security-Policy allows no inline script.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-close-modal]");
    if (!link) return;
    event.preventDefault();
    document.getElementById("modal").innerHTML = "";
  });

  // A 503 that names its cause (X-Lbpanel-Error: the database refused a change) is shown in the
  // modal it retargets to; htmx would otherwise drop it and the button would seem to do nothing.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 503 && xhr.getResponseHeader("X-Lbpanel-Error")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSettle", tick);
  document.addEventListener("keydown", function (event) {
    var modal = document.getElementById("modal");
    if (event.key === "Escape" && modal && modal.firstElementChild && !modal.closest("[hx-disable]")) modal.innerHTML = "";
  });
  setInterval(tick, 1000);
})();
