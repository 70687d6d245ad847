// screwcam live page: clean video from /stream.mjpg?labels=0 (labels: overlay.js), heads
// and status from /api/events (SSE).
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
  // The clean stream (?labels=0): the labels are drawn by the page (overlay.js).
  // An <img> cannot read an HTTP error, so after a failed load the page asks the
  // server (HEAD) why: 503 = too many viewers, retried after its Retry-After.
  const note = $("video-note");
  let retryTimer = 0;
  let lastResultAt = 0; // when the event stream last brought a result
  function showNote(text) {
    note.textContent = text || "";
    note.hidden = !text;
  }
  function startVideo() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    img.src = withToken("/stream.mjpg?labels=0&t=" + Date.now());
  }
  function retryVideo(seconds, text) {
    showNote(text);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(startVideo, seconds * 1000);
  }
  async function videoFailed() {
    if (retryTimer) return;
    retryTimer = -1; // a retry is being planned
    let seconds = 2;
    let text = "video: reconnecting…";
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const signal = AbortSignal.timeout ? AbortSignal.timeout(4000) : undefined;
      const resp = await fetch("/stream.mjpg?labels=0",
        { method: "HEAD", headers, cache: "no-store", signal });
      if (resp.status === 503) {
        seconds = Math.min(60, Math.max(1, parseInt(resp.headers.get("Retry-After"), 10) || 5));
        text = "too many viewers — video retries in " + seconds + " s";
      } else if (resp.status === 401) {
        text = "video: needs the access token (?token=…)";
        seconds = 30;
      }
    } catch (err) {
      // the server is away: the event stream restarts the video when it is back
    }
    retryVideo(seconds, text);
  }
  img.addEventListener("error", videoFailed);
  img.addEventListener("load", () => showNote(""));
  // A dropped stream fires no event: while results arrive, a picture that has not
  // changed for two looks (8 s) is a stream that ended; open it again.
  const probe = document.createElement("canvas");
  probe.width = 16;
  probe.height = 12;
  let lastLook = "";
  let sameLooks = 0;
  setInterval(() => {
    if (retryTimer || !img.complete || !img.naturalWidth || document.hidden) return;
    let look = "";
    try {
      const ctx = probe.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(img, 0, 0, probe.width, probe.height);
      look = ctx.getImageData(0, 0, probe.width, probe.height).data.join(",");
    } catch (err) {
      return;
    }
    sameLooks = look === lastLook ? sameLooks + 1 : 0;
    lastLook = look;
    if (sameLooks >= 2 && Date.now() - lastResultAt < 3000) {
      sameLooks = 0;
      startVideo(); // quietly: the old picture stays until the new stream's first frame
    }
  }, 4000);
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
      lastResultAt = Date.now();
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
