/*
 * Live door counter on the check-in page: refreshes
 *   <p data-door-count-url="/check-in/count/?event=1"><strong data-checked-in>3</strong> … <strong data-sold>9</strong></p>
 * every few seconds, so every door sees the others' admissions. Progressive enhancement: without JavaScript
 * the numbers are those of the last scan. No inline script (strict Content-Security-Policy).
 */
(function () {
  "use strict";

  var EVERY_MS = 5000;

  function start(element) {
    var url = element.getAttribute("data-door-count-url");
    var checkedIn = element.querySelector("[data-checked-in]");
    var sold = element.querySelector("[data-sold]");
    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (body) {
          if (body) {
            checkedIn.textContent = String(body.checked_in);
            sold.textContent = String(body.sold);
          }
        })
        .catch(function () {
          /* offline for a moment: keep the last numbers */
        });
    }
    window.setInterval(refresh, EVERY_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-door-count-url]").forEach(start);
  });
})();
