// screwcam live page: video from /stream.mjpg, heads and status from /api/events (SSE).
"use strict";
(function () {
  const info = JSON.parse(document.getElementById("class-info").textContent);
  const byName = Object.fromEntries(info.map((c) => [c.name, c]));
  const token = new URLSearchParams(location.search).get("token");
  const withToken = (url) => (token ? url + (url.includes("?") ? "&" : "?") +
    "token=" + encodeURIComponent(token) : url);
  const $ = (id) => document.getElementById(id);
  const img = $("stream");

  // --- video ---------------------------------------------------------------
  function startVideo() {
    img.src = withToken("/stream.mjpg?t=" + Date.now());
  }
  img.addEventListener("error", () => setTimeout(startVideo, 2000));
  startVideo();

  // --- heads ---------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function headItems(heads) {
    return heads.map((h) => {
      const c = byName[h.label] || byName.unknown;
      const pct = Math.round(h.confidence * 100);
      const li = el("li", "head" + (h.label === "unknown" ? " unknown" : ""));
      li.dataset.label = h.label;
      const dot = el("span", "dot");
      dot.style.background = c.color;
      const track = el("div", "track");
      const fill = el("div", "fill");
      fill.style.width = pct + "%";
      fill.style.background = c.color;
      track.append(fill);
      // with tracking: the track's id and its voted label (steady), the frame's own
      // label in the tooltip
      const t = h.track;
      const voted = t && t.label !== "unknown";
      const nameEl = el("span", "name", voted ? t.label_en : (h.label_en || c.en));
      if (voted) {
        dot.style.background = (byName[t.label] || c).color;
        nameEl.title = "voted over " + t.frames + " frames; this frame: " +
          (h.label_en || c.en) + " " + pct + "%" + (t.counted ? " · counted" : "");
      }
      const pctEl = el("span", "pct", pct + "%");
      if (t) {
        li.dataset.track = t.id;
        pctEl.prepend(el("span", "tid", "#" + t.id + (t.counted ? " ✓ · " : " · ")));
      }
      li.append(dot, nameEl, pctEl, track);
      return li;
    });
  }
  function showHeads(heads) {
    $("heads").replaceChildren(...headItems(heads));
    $("no-heads").hidden = heads.length > 0;
    $("head-count").textContent = heads.length;
    const counts = {};
    heads.forEach((h) => { counts[h.label] = (counts[h.label] || 0) + 1; });
    document.querySelectorAll("#classes li").forEach((li) => {
      const n = counts[li.dataset.label] || 0;
      li.querySelector(".n").textContent = n;
      li.classList.toggle("zero", n === 0);
    });
  }

  // --- status --------------------------------------------------------------
  function showStatus(data) {
    const cam = data.camera || {};
    const pill = $("camera");
    const state = cam.state || "unknown";
    pill.textContent = "camera: " + state;
    pill.className = "pill " + (state === "ok" ? "pill-ok" :
      state === "reconnecting" ? "pill-bad" : "pill-wait");
    const msg = $("camera-message");
    msg.hidden = state === "ok";
    msg.textContent = state === "ok" ? "" : (cam.message || state);
    if (typeof data.fps === "number") $("fps").textContent = data.fps.toFixed(1);
    if (typeof data.latency_ms === "number") $("latency").textContent = Math.round(data.latency_ms);
  }

  // --- events --------------------------------------------------------------
  let events = null;
  let lost = false;
  function connect() {
    events = new EventSource(withToken("/api/events"));
    events.onopen = () => {
      if (lost) startVideo(); // the server came back: restart the video stream too
      lost = false;
    };
    events.onmessage = (e) => {
      const data = JSON.parse(e.data);
      if (data.size && data.size[1] > 0) {
        document.documentElement.style.setProperty("--ar", data.size[0] / data.size[1]);
      }
      showHeads(data.heads || []);
      showStatus(data);
      document.dispatchEvent(new CustomEvent("screwcam-result", { detail: data }));
    };
    events.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
    events.onerror = () => {
      lost = true;
      const pill = $("camera");
      pill.textContent = "server: offline";
      pill.className = "pill pill-bad";
      if (events.readyState === EventSource.CLOSED) {
        setTimeout(connect, 3000); // the browser gave up (e.g. HTTP error): retry ourselves
      }
    };
  }
  connect();
  showHeads([]);

  // --- classify a photo (POST /api/classify) ---------------------------------------
  const photo = $("photo");
  photo.addEventListener("change", async () => {
    const file = photo.files[0];
    if (!file) return;
    const msg = $("photo-message");
    const canvas = $("photo-view");
    msg.hidden = false;
    msg.textContent = "Classifying…";
    $("photo-heads").replaceChildren();
    canvas.hidden = true;
    try {
      const headers = { "Content-Type": file.type || "application/octet-stream" };
      if (token) headers.Authorization = "Bearer " + token;
      const resp = await fetch("/api/classify", { method: "POST", body: file, headers });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data.message || resp.statusText);
      const heads = data.heads || [];
      msg.textContent = heads.length ? heads.length + " head(s) found." : "No screw heads found.";
      $("photo-heads").replaceChildren(...headItems(heads));
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(1, 960 / bitmap.width);
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      const ctx = canvas.getContext("2d");
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      ctx.lineWidth = Math.max(2, canvas.width / 300);
      heads.forEach((h) => {
        ctx.strokeStyle = (byName[h.label] || byName.unknown).color;
        const [x, y, w, hh] = h.box.map((v) => v * scale);
        ctx.strokeRect(x, y, w, hh);
      });
      canvas.hidden = false;
    } catch (err) {
      msg.textContent = "Could not classify the photo: " + err.message;
    } finally {
      photo.value = "";
    }
  });
})();
