// Teach panel: record examples of a class, review unsure heads, adapt, revert,
// record a training video. Talks to /api/teach/* (token from ?token= like app.js).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  if (!$("teach")) return;
  const token = new URLSearchParams(location.search).get("token");
  const withToken = (url) => (token ? url + (url.includes("?") ? "&" : "?") +
    "token=" + encodeURIComponent(token) : url);
  const names = {};

  async function call(method, url, body) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const resp = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.message || resp.statusText);
    return data;
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function crop(kind, id) {
    return el("img", { src: withToken(`/api/teach/crop/${kind}/${id}`), alt: "" });
  }
  function pct(v) { return (v * 100).toFixed(1) + " %"; }

  let polling = null;
  let lastThumbs = "";
  let lastReview = "";
  function show(s) {
    s.classes.forEach((c) => { names[c.name] = c.en; });
    const live = s.live || {};
    const name = live.name || live.path || "?";
    $("teach-live").textContent = (live.adapted ? "adapted: " : "model: ") + name;
    $("teach-live").dataset.adapted = live.adapted ? "1" : "0";
    $("teach-live").dataset.name = name;
    const mn = $("model-name"); if (mn) mn.textContent = name;
    $("teach-revert").disabled = !live.adapted;
    // examples per class
    $("teach-counts").replaceChildren(...s.classes.map((c) => {
      const tr = el("tr", { "data-label": c.name });
      tr.append(el("td", {}, c.en), el("td", { class: "n" }, String(s.examples[c.name] || 0)));
      return tr;
    }));
    // recording session
    const sess = s.session;
    const rec = $("teach-record");
    if (sess && sess.active) {
      rec.textContent = "Stop";
      $("teach-progress").textContent = `Recording ${names[sess.label]}: ${sess.seconds_left.toFixed(0)} s left · ` +
        `${sess.saved} saved · skipped ${sess.no_head} without a head, ${sess.several} with several`;
    } else {
      rec.textContent = "Record";
      if (sess) {
        $("teach-progress").textContent = `Recorded ${sess.saved} examples of ${names[sess.label]} ` +
          `(skipped ${sess.no_head} frames without a head, ${sess.several} with several heads)`;
      }
    }
    $("teach-progress").dataset.saved = sess ? sess.saved : 0;
    const thumbs = sess ? sess.thumbs.join(",") : "";
    if (thumbs !== lastThumbs) {
      lastThumbs = thumbs;
      $("teach-thumbs").replaceChildren(...(sess ? sess.thumbs : []).map((t) => crop("examples", t)));
    }
    // review queue
    $("teach-review-n").textContent = s.review_total;
    const review = s.review.map((r) => r.id).join(",");
    if (review !== lastReview) {
      lastReview = review;
      $("teach-review").replaceChildren(...s.review.map((r) => {
        const fig = el("figure", { "data-id": r.id });
        const sel = el("select", { "aria-label": "label this head" });
        sel.append(el("option", { value: "" }, `${names[r.best] || r.best} ${r.confidence}%?`));
        s.classes.forEach((c) => sel.append(el("option", { value: c.name }, c.en)));
        sel.append(el("option", { value: "-" }, "discard"));
        sel.addEventListener("change", async () => {
          const body = sel.value === "-" ? { discard: true } : { label: sel.value };
          try { await call("POST", "/api/teach/review/" + encodeURIComponent(r.id), body); }
          catch (err) { $("teach-result").textContent = err.message; }
          refresh();
        });
        fig.append(crop("review", r.id), sel);
        return fig;
      }));
    }
    // videos
    const v = s.video;
    $("teach-video-state").textContent = !v ? "" : v.active ? `Recording ${names[v.label]}…` :
      v.error ? "Video failed: " + v.error : v.file ? `Saved ${v.file} (${v.frames} frames)` : "";
    $("teach-videos").replaceChildren(...s.videos.map((f) => {
      const li = el("li");
      li.append(el("a", { href: withToken("/api/teach/videos/" + encodeURIComponent(f.name)) }, f.name));
      return li;
    }));
    const busy = (sess && sess.active) || (v && v.active);
    if (busy && !polling) polling = setInterval(refresh, 500);
    if (!busy && polling) { clearInterval(polling); polling = null; }
  }
  async function refresh() {
    try { show(await call("GET", withToken("/api/teach/status"))); }
    catch (err) { $("teach-result").textContent = "Teach: " + err.message; }
  }

  $("teach-record").addEventListener("click", async () => {
    try {
      if ($("teach-record").textContent === "Stop") await call("POST", "/api/teach/stop");
      else await call("POST", "/api/teach/record",
        { label: $("teach-class").value, seconds: Number($("teach-seconds").value) || 10 });
    } catch (err) { $("teach-result").textContent = err.message; }
    refresh();
  });
  $("teach-clear").addEventListener("click", async () => {
    const label = $("teach-class").value;
    if (!confirm(`Delete every example of ${names[label] || label}?`)) return;
    try { await call("POST", "/api/teach/clear", { label }); }
    catch (err) { $("teach-result").textContent = err.message; }
    refresh();
  });
  $("teach-adapt").addEventListener("click", async () => {
    $("teach-adapt").disabled = true;
    $("teach-result").textContent = "Adapting…";
    try {
      const r = await call("POST", "/api/teach/adapt");
      const m = r.metrics;
      $("teach-result").textContent = `Live: ${r.live.name}. Held-out accuracy ${pct(m.heldout_accuracy)} ` +
        `(base model ${pct(m.base_accuracy)}) on ${m.n} examples, ${m.how}; took ${m.total_seconds.toFixed(1)} s.`;
      $("teach-result").dataset.accuracy = m.heldout_accuracy;
    } catch (err) { $("teach-result").textContent = "Could not adapt: " + err.message; }
    $("teach-adapt").disabled = false;
    refresh();
  });
  $("teach-revert").addEventListener("click", async () => {
    try {
      const r = await call("POST", "/api/teach/revert");
      $("teach-result").textContent = "Back to the base model " + r.live.name + ".";
    } catch (err) { $("teach-result").textContent = err.message; }
    refresh();
  });
  $("teach-video").addEventListener("click", async () => {
    try { await call("POST", "/api/teach/video",
      { label: $("teach-class").value, seconds: Number($("teach-seconds").value) || 10 }); }
    catch (err) { $("teach-video-state").textContent = err.message; }
    refresh();
  });
  $("teach-video-stop").addEventListener("click", async () => {
    try { await call("POST", "/api/teach/video/stop"); } catch (err) { /* shown by refresh */ }
    refresh();
  });
  $("teach-snapshot").href = withToken("/api/snapshot.jpg");
  refresh();
  setInterval(() => { if (!polling) refresh(); }, 5000);
})();
