/*
 * Hold countdown: turns
 *   <p data-hold-expires="ISO-8601" data-server-now="ISO-8601">Your tickets are held until 20:15.</p>
 * into a live "Your tickets are held for mm:ss"; at zero it says what happens next (data-expired-text, or what
 * the basket and checkout pages say; data-running-text, with {time} for mm:ss, words the running count in the page's
 * language). Progressive enhancement: without JavaScript the server-rendered sentence
 * stays. The server's clock is the reference (the shopper's clock may be off),
 * so the remaining time is measured from the server's "now" at render time.
 *
 * Screen readers: the ticking element is a role="timer" (not live: a sentence a second would drown everything else).
 * A polite live region next to it speaks at each whole minute left (data-minutes-left-text, "{minutes}" replaced;
 * data-one-minute-left-text at one) and at expiry. The sentences come from data- attributes the server renders, so
 * they are translated there; the English below is only the fallback.
 */
(function () {
  "use strict";

  var EXPIRED_TEXT = "Your hold has expired. We'll try to re-reserve your tickets at checkout.";
  var COUNTDOWN_TEXT = "Your tickets are held for {time}";
  var MINUTES_LEFT_TEXT = "{minutes} minutes left to complete your order.";
  var ONE_MINUTE_LEFT_TEXT = "One minute left to complete your order.";

  function text(element, name, fallback) {
    return element.getAttribute(name) || fallback;
  }

  function announcer(element) {
    var live = document.createElement("p");
    live.className = "visually-hidden";
    live.setAttribute("aria-live", "polite");
    live.setAttribute("data-hold-announcer", "");
    element.insertAdjacentElement("afterend", live);
    return live;
  }

  function minuteText(element, minutes) {
    if (minutes === 1) {
      return text(element, "data-one-minute-left-text", ONE_MINUTE_LEFT_TEXT);
    }
    return text(element, "data-minutes-left-text", MINUTES_LEFT_TEXT).replace("{minutes}", String(minutes));
  }

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
    var expiredText = text(element, "data-expired-text", EXPIRED_TEXT);
    var countdownText = text(element, "data-countdown-text", COUNTDOWN_TEXT);
    var container = element.closest(".hold-notice");
    var live = announcer(element);
    var timer = null;
    // The minutes left (rounded up) at the last render: crossing into a lower one is announced, the first is not
    // (the page's own sentence says it).
    var minutesShown = null;

    function render() {
      var left = Math.ceil((expires - (Date.now() + skew)) / 1000);
      var minutes = Math.ceil(left / 60);
      if (minutesShown !== null && minutes < minutesShown && left > 0) {
        live.textContent = minuteText(element, minutes);
      }
      minutesShown = minutes;
      if (left <= 0) {
        element.textContent = expiredText;
        if (timer !== null) {
          live.textContent = expiredText; // only when it ran out while the page was open
        }
        if (container) {
          container.classList.add("is-expired");
        }
        element.classList.add("is-expired");
        if (timer !== null) {
          window.clearInterval(timer);
        }
        return;
      }
      element.textContent = countdownText.replace("{time}", format(left));
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
