// Swagger UI over /openapi.json, from the bundled swagger-ui-dist (no CDN).
(function () {
  "use strict";
  var el = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: el.getAttribute("data-openapi-url"), dom_id: "#swagger-ui" });
})();
