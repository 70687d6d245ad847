// Labels drawn by the page over the live video (the clean stream, /stream.mjpg?labels=0),
// from the event stream's heads (app.js re-dispatches every result as a
// "screwcam-result" event). SVG text stays crisp at any zoom, so the labels are
// readable on a phone. The SVG covers the <img> exactly; its viewBox is the frame size.
"use strict";
(function () {
  const svg = document.getElementById("overlay");
  const img = document.getElementById("stream");
  if (!svg || !img) return;
  const info = JSON.parse(document.getElementById("class-info").textContent);
  const colors = Object.fromEntries(info.map((c) => [c.name, c.color]));
  const names = Object.fromEntries(info.map((c) => [c.name, c.en]));
  const toggle = document.getElementById("overlay-on");
  const NS = "http://www.w3.org/2000/svg";

  function place() {
    svg.style.left = img.offsetLeft + "px";
    svg.style.top = img.offsetTop + "px";
    svg.style.width = img.offsetWidth + "px";
    svg.style.height = img.offsetHeight + "px";
  }
  function draw(data) {
    if (toggle && !toggle.checked) { svg.replaceChildren(); return; }
    const [w, h] = data.size || [640, 480];
    if (!w || !h) return;
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    place();
    // text size in frame pixels for ~16 CSS px on screen (13 on a phone)
    const narrow = img.offsetWidth < 500;
    const scale = w / Math.max(1, img.offsetWidth);
    const size = (narrow ? 13 : 16) * scale;
    const items = [];
    for (const head of data.heads || []) {
      const [x, y, bw, bh] = head.box;
      // with tracking: the label voted over the head's track (steady), as drawn into
      // /stream.mjpg; otherwise this frame's label
      const t = head.track;
      const voted = t && t.label !== "unknown";
      const label = voted ? t.label : head.label;
      const color = colors[label] || colors.unknown || "#ccc";
      const rect = document.createElementNS(NS, "rect");
      rect.setAttribute("x", x); rect.setAttribute("y", y);
      rect.setAttribute("width", bw); rect.setAttribute("height", bh);
      rect.setAttribute("rx", 3 * scale);
      rect.style.stroke = color;
      const text = document.createElementNS(NS, "text");
      text.setAttribute("x", x);
      text.setAttribute("y", y > size * 1.2 ? y - size * 0.3 : y + bh + size);
      text.setAttribute("font-size", size);
      text.style.strokeWidth = (3 * scale) + "px";
      text.textContent = voted
        ? `${t.label_en || names[label] || label} ${Math.round(t.confidence * 100)}%` +
          (narrow ? "" : ` #${t.id}`)
        : `${head.label_en || names[label] || label} ${Math.round(head.confidence * 100)}%`;
      text.classList.add("label");
      text.dataset.label = label;
      items.push(rect, text);
    }
    svg.replaceChildren(...items);
    // keep every label inside the picture (a head at the right edge)
    for (const text of svg.querySelectorAll("text")) {
      const x = +text.getAttribute("x");
      const len = text.getComputedTextLength();
      if (x + len > w) text.setAttribute("x", Math.max(0, w - len));
    }
  }
  document.addEventListener("screwcam-result", (e) => draw(e.detail));
  window.addEventListener("resize", place);
  img.addEventListener("load", place);
  if (window.ResizeObserver) new ResizeObserver(place).observe(img);
  if (toggle) toggle.addEventListener("change", () => svg.replaceChildren());
})();
