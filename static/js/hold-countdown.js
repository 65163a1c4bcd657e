/*
 * Hold countdown: turns
 *   <p data-hold-expires="ISO-8601" data-server-now="ISO-8601">Your tickets are held until 20:15.</p>
 * into a live "Your tickets are held for mm:ss"; at zero it says what happens next (data-expired-text, or what
 * the basket and checkout pages say; data-running-text, with {time} for mm:ss, words the running count in the page's
 * language). Progressive enhancement: without JavaScript the server-rendered sentence
 * stays. The server's clock is the reference (the shopper's clock may be off),
 * so the remaining time is measured from the server's "now" at render time.
 */
(function () {
  "use strict";

  var EXPIRED_TEXT = "Your hold has expired. We'll try to re-reserve your tickets at checkout.";

  function pad(number) {
    return number < 10 ? "0" + number : String(number);
  }

  function format(seconds) {
    return pad(Math.floor(seconds / 60)) + ":" + pad(seconds % 60);
  }

  function start(element) {
    var expires = Date.parse(element.getAttribute("data-hold-expires"));
    var serverNow = Date.parse(element.getAttribute("data-server-now"));
    if (isNaN(expires)) {
      return;
    }
    // Milliseconds to add to the browser's clock to get the server's.
    var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
    var expiredText = element.getAttribute("data-expired-text") || EXPIRED_TEXT;
    var runningText = element.getAttribute("data-running-text") || "Your tickets are held for {time}";
    var container = element.closest(".hold-notice");
    var timer = null;

    function render() {
      var left = Math.ceil((expires - (Date.now() + skew)) / 1000);
      if (left <= 0) {
        element.textContent = expiredText;
        if (container) {
          container.classList.add("is-expired");
        }
        element.classList.add("is-expired");
        if (timer !== null) {
          window.clearInterval(timer);
        }
        return;
      }
      element.textContent = runningText.replace("{time}", format(left));
    }

    render();
    if (!element.classList.contains("is-expired")) {
      timer = window.setInterval(render, 1000);
    }
  }

  function init() {
    var elements = document.querySelectorAll("[data-hold-expires]");
    for (var i = 0; i < elements.length; i += 1) {
      start(elements[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
