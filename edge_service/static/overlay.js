// Labels drawn by the page over the live video, from the event stream's heads
// (app.js re-dispatches every result as a "screwcam-result" event). SVG text stays
// crisp at any zoom, so the labels are readable on a phone.
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
    // text size in frame pixels for ~16 CSS px on screen
    const scale = w / Math.max(1, img.offsetWidth);
    const size = 16 * scale;
    const items = [];
    for (const head of data.heads || []) {
      const [x, y, bw, bh] = head.box;
      const color = colors[head.label] || colors.unknown || "#ccc";
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
      text.textContent = `${head.label_en || names[head.label] || head.label} ` +
        `${Math.round(head.confidence * 100)}%`;
      text.classList.add("label");
      text.dataset.label = head.label;
      items.push(rect, text);
    }
    svg.replaceChildren(...items);
  }
  document.addEventListener("screwcam-result", (e) => draw(e.detail));
  window.addEventListener("resize", place);
  if (toggle) toggle.addEventListener("change", () => svg.replaceChildren());
})();
