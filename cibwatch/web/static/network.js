// The operation's network view: fetches cytoscape elements from the JSON API and draws
// them. Labels are drawn on a canvas as text, so hostile handles cannot inject markup.
(function () {
  "use strict";
  var el = document.getElementById("network");
  if (!el || typeof cytoscape === "undefined") { return; }
  var status = document.getElementById("network-status");
  fetch(el.getAttribute("data-src"), {
    credentials: "same-origin", headers: { "Accept": "application/json" }
  }).then(function (r) {
    if (!r.ok) { throw new Error("HTTP " + r.status); }
    return r.json();
  }).then(function (data) {
    var cy = cytoscape({
      container: el,
      elements: data.elements,
      wheelSensitivity: 0.3,
      style: [
        { selector: "node[kind = 'asset']", style: {
          "label": "data(label)", "font-size": 8, "width": 10, "height": 10,
          "background-color": "#c0392b", "color": "#333", "text-valign": "bottom" } },
        { selector: "node[?excluded]", style: {
          "background-color": "#fff", "border-width": 2, "border-color": "#c0392b" } },
        { selector: "node[kind = 'cluster']", style: {
          "label": "data(label)", "font-size": 10, "text-valign": "top",
          "background-color": "#f4f1ea", "border-color": "#999", "border-width": 1 } },
        { selector: "edge[kind = 'edge']", style: {
          "width": "mapData(weight, 0, 50, 0.5, 4)", "line-color": "#bbb" } },
        { selector: "edge[kind = 'link']", style: {
          "width": 3, "line-color": "#2c3e50", "line-style": "dashed" } }
      ],
      // positions come from the server (spring layout per cluster, cached)
      layout: { name: "preset", fit: true, padding: 20 }
    });
    el.setAttribute("data-nodes", String(cy.nodes("[kind = 'asset']").length));
    el.setAttribute("data-edges", String(cy.edges().length));
    status.textContent = data.nodes_shown + " of " + data.nodes_total + " assets shown";
    cy.on("tap", "node[kind = 'asset']", function (evt) {
      var d = evt.target.data();
      window.location.href = "/assets/" + encodeURIComponent(d.platform) + "/" +
        encodeURIComponent(d.account_id);
    });
  }).catch(function (err) {
    status.textContent = "Network view unavailable: " + err.message;
  });
})();
