// screwcam live page, the line: tallies from /api/counts, the live model from /api/model.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token");
  const headers = token ? { Authorization: "Bearer " + token } : {};

  async function getJson(url) {
    const resp = await fetch(url, { headers, cache: "no-store" });
    if (!resp.ok) throw new Error(resp.statusText);
    return resp.json();
  }

  function showCounts(data) {
    $("count-total").textContent = data.total;
    $("count-since").textContent = new Date(data.since).toLocaleString();
    $("count-since").dateTime = data.since;
    document.querySelectorAll("#tally li").forEach((li) => {
      const n = data.counts[li.dataset.label] || 0;
      li.querySelector(".n").textContent = n;
      li.classList.toggle("zero", n === 0);
    });
  }

  async function pollCounts() {
    try { showCounts(await getJson("/api/counts")); } catch (e) { /* next time */ }
  }
  async function pollModel() {
    try {
      const m = await getJson("/api/model");
      $("model-name").textContent = m.name || "?";
      $("model-name").title = m.path || "";
    } catch (e) { /* next time */ }
  }

  if ($("tallies")) {
    pollCounts();
    setInterval(pollCounts, 1000);
    $("count-reset").addEventListener("click", async () => {
      const resp = await fetch("/api/counts/reset", { method: "POST", headers });
      if (resp.ok) showCounts(await resp.json());
      else alert("Reset refused: " + ((await resp.json()).message || resp.statusText));
    });
  }
  setInterval(pollModel, 5000);
})();
