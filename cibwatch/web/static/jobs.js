// Reload the detect-runs page every two seconds while a run is in progress.
(function () {
  "use strict";
  var table = document.getElementById("jobs");
  if (table && table.getAttribute("data-poll") === "yes") {
    window.setTimeout(function () { window.location.reload(); }, 2000);
  }
})();
