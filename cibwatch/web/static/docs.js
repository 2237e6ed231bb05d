// Swagger UI over /openapi.json, from the bundled swagger-ui-dist (no CDN). "Try it out"
// runs with the session cookie, so writes carry the session's CSRF token.
(function () {
  "use strict";
  var el = document.getElementById("swagger-ui");
  fetch("/api/me", { credentials: "same-origin" }).then(function (r) {
    return r.ok ? r.json() : {};
  }).then(function (me) {
    window.ui = SwaggerUIBundle({
      url: el.getAttribute("data-openapi-url"),
      dom_id: "#swagger-ui",
      validatorUrl: null,  // never ask validator.swagger.io
      requestInterceptor: function (req) {
        if (me.csrf_token) { req.headers["X-CSRF-Token"] = me.csrf_token; }
        return req;
      }
    });
  });
})();
