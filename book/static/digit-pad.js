// The digit pad of chapter 15 ("Shipping the model"): draw a digit, and the LeNet-5 the chapter
// exported to ONNX classifies it in this page, with onnxruntime-web (vendored, served from the
// book itself: no network). The drawing goes through the same MNIST-style preprocessing as
// chapter 10, ported from mnist_course/preprocess.py (mnist_image): the tests compare the two.
(function () {
  "use strict";

  // ---- MNIST-style preprocessing: a port of mnist_course.preprocess.mnist_image -------------

  const f32 = Math.fround;

  function roundHalfEven(x) {  // Python's round(): halves go to the even neighbour
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // Opaque RGBA bytes -> gray in [0, 1], as PIL's convert("L") computes it (integer luma). The pad's
  // canvas is always opaque: it is filled with white paper before anything is drawn.
  function grayscale(rgba, n) {
    const gray = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const l = (rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16;
      gray[i] = f32(l / 255);
    }
    return gray;
  }

  function median(values) {
    const s = Float64Array.from(values).sort();
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  function whiteInk(gray, w, h) {  // white ink on black, the background's level removed
    const border = [];
    for (let x = 0; x < w; x++) border.push(gray[x], gray[(h - 1) * w + x]);
    for (let y = 0; y < h; y++) border.push(gray[y * w], gray[y * w + w - 1]);
    const background = median(border);
    const dark = background < 0.5;
    const offset = f32(dark ? background : 1 - background);
    const ink = new Float32Array(w * h);
    let max = 0;
    for (let i = 0; i < ink.length; i++) {
      const v = dark ? gray[i] : f32(1 - gray[i]);
      ink[i] = Math.min(1, Math.max(0, f32(v - offset)));
      max = Math.max(max, ink[i]);
    }
    if (max < 0.15) throw new Error("no ink found: the image is blank (or its contrast is far too low)");
    return ink;
  }

  function otsuThreshold(values) {  // Otsu (1979) over a 256-bin histogram of [0, 1]
    const hist = new Float64Array(256);
    for (const v of values) hist[Math.min(255, Math.floor(v * 256))]++;
    const total = Math.max(values.length, 1);
    let omega = 0, mu = 0, muTotal = 0;
    for (let k = 0; k < 256; k++) muTotal += (hist[k] / total) * ((k + 0.5) / 256);
    let best = -1, bestK = 0;
    for (let k = 0; k < 256; k++) {
      const p = hist[k] / total;
      omega += p;
      mu += p * ((k + 0.5) / 256);
      const between = (muTotal * omega - mu) ** 2 / Math.max(omega * (1 - omega), 1e-12);
      if (between > best) { best = between; bestK = k; }
    }
    return (bestK + 1) / 256;
  }

  function percentile(values, q) {  // numpy's default (linear) method
    const s = Float64Array.from(values).sort();
    const pos = (q / 100) * (s.length - 1);
    const lo = Math.floor(pos), hi = Math.min(lo + 1, s.length - 1), t = pos - lo;
    return s[lo] + (s[hi] - s[lo]) * t;
  }

  function components(mask, w, h) {  // 8-connected regions as [area, top, left, bottom, right]
    const seen = new Uint8Array(w * h), found = [];
    for (let start = 0; start < w * h; start++) {
      if (!mask[start] || seen[start]) continue;
      seen[start] = 1;
      const queue = [start];
      let area = 0, top = h, left = w, bottom = -1, right = -1;
      for (let q = 0; q < queue.length; q++) {
        const r = Math.floor(queue[q] / w), c = queue[q] % w;
        area++;
        top = Math.min(top, r); left = Math.min(left, c); bottom = Math.max(bottom, r); right = Math.max(right, c);
        for (let dr = -1; dr <= 1; dr++) {
          for (let dc = -1; dc <= 1; dc++) {
            const rr = r + dr, cc = c + dc, j = rr * w + cc;
            if (rr >= 0 && rr < h && cc >= 0 && cc < w && mask[j] && !seen[j]) { seen[j] = 1; queue.push(j); }
          }
        }
      }
      found.push([area, top, left, bottom, right]);
    }
    return found.sort((a, b) => { for (let i = 0; i < 5; i++) if (a[i] !== b[i]) return b[i] - a[i]; return 0; });
  }

  function boxGap(a, b) {
    return Math.max(Math.max(a[2] - b[4], b[2] - a[4], 0), Math.max(a[1] - b[3], b[1] - a[3], 0));
  }

  function marks(mask, w, h) {  // the ink's marks on a grid of at most 96 cells a side, close ones grouped
    const factor = Math.max(1, Math.ceil(Math.max(w, h) / 96));
    const sw = Math.floor(w / factor), sh = Math.floor(h / factor), small = new Uint8Array(sw * sh);
    for (let y = 0; y < sh * factor; y++) {
      for (let x = 0; x < sw * factor; x++) if (mask[y * w + x]) small[Math.floor(y / factor) * sw + Math.floor(x / factor)] = 1;
    }
    const parts = components(small, sw, sh);
    if (!parts.length) throw new Error("no ink found: the image is blank (or its contrast is far too low)");
    const significant = parts.filter((p) => p[0] >= 0.15 * parts[0][0]);
    const height = Math.max(...significant.map((p) => p[3] - p[1] + 1));
    let groups = [];
    for (const part of significant) {
      const near = groups.filter((g) => g.some((q) => boxGap(part, q) <= 0.35 * height));
      const merged = [part].concat(...near);
      groups = groups.filter((g) => !near.includes(g)).concat([merged]);
    }
    return { groups, factor };
  }

  function cropDigit(cleaned, mask, w, h, threshold) {
    const { groups, factor } = marks(mask, w, h);
    if (groups.length > 1) {
      throw new Error(`found ${groups.length} separate marks far apart: this looks like several digits`);
    }
    const g = groups[0];
    const top = Math.min(...g.map((p) => p[1])) * factor, left = Math.min(...g.map((p) => p[2])) * factor;
    const bottom = Math.min((Math.max(...g.map((p) => p[3])) + 1) * factor, h);
    const right = Math.min((Math.max(...g.map((p) => p[4])) + 1) * factor, w);
    let r0 = Infinity, r1 = -1, c0 = Infinity, c1 = -1;
    for (let y = top; y < bottom; y++) {
      for (let x = left; x < right; x++) {
        if (cleaned[y * w + x] >= threshold) { r0 = Math.min(r0, y); r1 = Math.max(r1, y); c0 = Math.min(c0, x); c1 = Math.max(c1, x); }
      }
    }
    const bw = c1 - c0 + 1, bh = r1 - r0 + 1, box = new Float32Array(bw * bh);
    for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) box[y * bw + x] = cleaned[(r0 + y) * w + c0 + x];
    return { box, bw, bh };
  }

  // PIL's resize(..., Image.Resampling.BOX) of a float image: a horizontal pass, then a vertical one,
  // each output pixel the average of the input pixels its box covers (weights as in Pillow's Resample.c).
  function boxWeights(inSize, outSize) {
    const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 0.5 * filterscale;
    const rows = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
      const k = [];
      let ww = 0;
      for (let x = 0; x < xmax - xmin; x++) {
        const t = (x + xmin - center + 0.5) / filterscale;
        const weight = t > -0.5 && t <= 0.5 ? 1 : 0;
        k.push(weight);
        ww += weight;
      }
      rows.push({ xmin, k: k.map((v) => (ww !== 0 ? v / ww : v)) });
    }
    return rows;
  }

  function resizeBox(src, w, h, ow, oh) {
    let cur = src, cw = w;
    if (ow !== w) {
      const wx = boxWeights(w, ow), out = new Float32Array(ow * h);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < ow; x++) {
          let ss = 0;
          wx[x].k.forEach((k, i) => { ss += cur[y * cw + wx[x].xmin + i] * k; });
          out[y * ow + x] = ss;
        }
      }
      cur = out; cw = ow;
    }
    if (oh !== h) {
      const wy = boxWeights(h, oh), out = new Float32Array(cw * oh);
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < cw; x++) {
          let ss = 0;
          wy[y].k.forEach((k, i) => { ss += cur[(wy[y].xmin + i) * cw + x] * k; });
          out[y * cw + x] = ss;
        }
      }
      cur = out;
    }
    return cur;
  }

  function centre(small, w, h) {  // into 28x28 with the centre of mass at (14, 14)
    let total = 0, sy = 0, sx = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const v = small[y * w + x]; total += v; sy += v * y; sx += v * x; }
    const oy = Math.min(Math.max(roundHalfEven(14 - sy / total), 0), 28 - h);
    const ox = Math.min(Math.max(roundHalfEven(14 - sx / total), 0), 28 - w);
    const canvas = new Float32Array(28 * 28);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) canvas[(oy + y) * 28 + ox + x] = small[y * w + x];
    return canvas;
  }

  // One digit's opaque RGBA pixels (w x h) -> the 28x28 image in [0, 1] the network reads, row by row.
  function mnistImage(rgba, w, h) {
    if (Math.min(w, h) < 8) throw new Error(`the image is too small to hold a digit: ${w}x${h} pixels`);
    const ink = whiteInk(grayscale(rgba, w * h), w, h);
    const faint = ink.filter((v) => v > 0.02);
    const threshold = Math.max(faint.length > 10 ? otsuThreshold(faint) : 0.5, 0.1);
    const mask = new Uint8Array(ink.length), cleaned = new Float32Array(ink.length);
    for (let i = 0; i < ink.length; i++) { mask[i] = ink[i] >= threshold; cleaned[i] = ink[i] >= threshold / 2 ? ink[i] : 0; }
    const stretch = percentile(cleaned.filter((v, i) => mask[i]), 95);
    for (let i = 0; i < cleaned.length; i++) cleaned[i] = Math.min(1, Math.max(0, f32(cleaned[i] / stretch)));
    const { box, bw, bh } = cropDigit(cleaned, mask, w, h, threshold);
    const scale = 20 / Math.max(bw, bh);
    const ow = Math.max(1, roundHalfEven(bw * scale)), oh = Math.max(1, roundHalfEven(bh * scale));
    const small = resizeBox(box, bw, bh, ow, oh).map((v) => Math.min(1, Math.max(0, v)));
    return centre(small, ow, oh);
  }

  // ---- the pad -------------------------------------------------------------------------------

  const here = document.currentScript ? document.currentScript.src.replace(/[^/]*$/, "") : "";
  const sessions = {};  // model URL -> the promise of its ONNX Runtime session

  function loadModel(url) {
    if (typeof ort === "undefined") return Promise.reject(new Error("onnxruntime-web (ort.wasm.min.js) did not load"));
    if (!sessions[url]) {
      ort.env.wasm.numThreads = 1;  // threads need a cross-origin-isolated page; one is plenty here
      ort.env.wasm.wasmPaths = here;  // the vendored .wasm and .mjs files sit beside this script
      sessions[url] = ort.InferenceSession.create(url, { executionProviders: ["wasm"] });
      sessions[url].catch(() => { delete sessions[url]; });  // a failed load can be tried again
    }
    return sessions[url];
  }

  function element(tag, className, parent, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function buildPad(root) {
    const drawing = element("div", "digit-pad-drawing", root);
    const canvas = element("canvas", "digit-pad-canvas", drawing);
    canvas.width = canvas.height = 280;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "drawing area: draw one digit with the mouse, a pen or a finger");
    const seen = element("canvas", "digit-pad-seen", drawing);
    seen.width = seen.height = 28;
    seen.hidden = true;
    const controls = element("div", "digit-pad-controls", root);
    const clear = element("button", "digit-pad-clear", controls, "Clear");
    clear.type = "button";
    const label = element("label", "digit-pad-toggle", controls);
    const toggle = element("input", "", label);
    toggle.type = "checkbox";
    label.appendChild(document.createTextNode(" show what the network sees (28×28)"));
    const answer = element("p", "digit-pad-answer", root, "Draw a digit in the box.");
    answer.setAttribute("aria-live", "polite");
    const bars = element("div", "digit-pad-bars", root);
    const fills = [];
    for (let d = 0; d < 10; d++) {
      const bar = element("div", "digit-pad-bar", bars);
      const track = element("div", "digit-pad-track", bar);
      fills.push(element("div", "digit-pad-fill", track));
      element("span", "digit-pad-digit", bar, String(d));
    }
    return { canvas, seen, clear, toggle, answer, fills };
  }

  function showSeen(seen, image) {
    const ctx = seen.getContext("2d"), pixels = ctx.createImageData(28, 28);
    image.forEach((v, i) => {
      const g = Math.round(255 * v);
      pixels.data.set([g, g, g, 255], 4 * i);
    });
    ctx.putImageData(pixels, 0, 0);
  }

  function setUp(root) {
    const ui = buildPad(root);
    const ctx = ui.canvas.getContext("2d", { willReadFrequently: true });
    let drawn = false, busy = false, again = false, pointer = null, last = null, generation = 0, loadError = null;

    function showBars(probs, best) {
      ui.fills.forEach((f, d) => {
        f.style.height = `${(100 * (probs ? probs[d] : 0)).toFixed(1)}%`;
        f.classList.toggle("digit-pad-best", d === best);
      });
    }

    function blank() {
      generation++;  // a classification still running belongs to the old drawing: its answer is dropped
      ctx.fillStyle = "#ffffff";  // paper, in light and dark mode alike
      ctx.fillRect(0, 0, 280, 280);
      drawn = false;
      again = false;
      pointer = last = null;
      showBars(null, -1);
      ui.answer.textContent = loadError || "Draw a digit in the box.";
      root.dataset.prediction = "";
      showSeen(ui.seen, new Float32Array(784));
    }

    async function classify() {
      if (busy) { again = true; return; }
      busy = true;
      root.dataset.state = "working";
      try {
        do {
          again = false;
          const mine = generation;
          let image;
          try {
            image = mnistImage(ctx.getImageData(0, 0, 280, 280).data, 280, 280);
          } catch (err) {  // nothing drawn yet, or not one digit: say so, show no answer
            showBars(null, -1);
            showSeen(ui.seen, new Float32Array(784));
            ui.answer.textContent = loadError || (drawn ? `Keep drawing: ${err.message}.` : "Draw a digit in the box.");
            root.dataset.prediction = "";
            continue;
          }
          showSeen(ui.seen, image);
          const model = await loadModel(root.dataset.model);
          const output = await model.run({ [model.inputNames[0]]: new ort.Tensor("float32", image, [1, 1, 28, 28]) });
          if (mine !== generation) continue;  // cleared meanwhile
          const probs = Array.from(output[model.outputNames[0]].data);
          const digit = probs.indexOf(Math.max(...probs));
          showBars(probs, digit);
          ui.answer.textContent = `The network reads ${digit} (${(100 * probs[digit]).toFixed(1)}%).`;
          root.dataset.prediction = String(digit);
        } while (again);
      } catch (err) {
        ui.answer.textContent = `The model could not run: ${err.message}`;
        root.dataset.prediction = "";
      } finally {
        busy = false;
        root.dataset.state = "done";  // what the page's tests wait for
      }
    }

    function point(event) {  // canvas pixels, inside the border
      const r = ui.canvas.getBoundingClientRect();
      const x = event.clientX - r.left - ui.canvas.clientLeft, y = event.clientY - r.top - ui.canvas.clientTop;
      return [(x * 280) / ui.canvas.clientWidth, (y * 280) / ui.canvas.clientHeight];
    }

    function lift() {
      if (pointer === null) return;
      pointer = last = null;
      classify();
    }

    ui.canvas.addEventListener("pointerdown", (event) => {
      if (!event.isPrimary || event.button !== 0 || pointer !== null) return;  // one finger, the main button
      pointer = event.pointerId;
      ui.canvas.setPointerCapture(event.pointerId);
      last = point(event);
      ctx.beginPath();
      ctx.arc(last[0], last[1], 9, 0, 2 * Math.PI);
      ctx.fillStyle = "#111111";
      ctx.fill();
      drawn = true;
      event.preventDefault();
    });
    ui.canvas.addEventListener("pointermove", (event) => {
      if (event.pointerId !== pointer) return;
      if (event.buttons === 0) { lift(); return; }  // the button was released where we did not hear it
      const p = point(event);
      ctx.strokeStyle = "#111111";
      ctx.lineWidth = 18;  // about MNIST's stroke: 2 of 20 pixels once scaled
      ctx.lineCap = ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(last[0], last[1]);
      ctx.lineTo(p[0], p[1]);
      ctx.stroke();
      last = p;
      window.requestAnimationFrame(classify);  // answers as you draw
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      ui.canvas.addEventListener(type, (event) => { if (event.pointerId === pointer) lift(); });
    }
    ui.clear.addEventListener("click", blank);
    ui.toggle.addEventListener("change", () => { ui.seen.hidden = !ui.toggle.checked; });

    blank();
    // The model (after a 15 MB WebAssembly runtime) loads when the pad comes into view, not with the page.
    return new Promise((resolve) => {
      const load = () => loadModel(root.dataset.model).then(
        () => { root.dataset.ready = "true"; resolve(); },
        (err) => { loadError = `The model could not be loaded: ${err.message}`; ui.answer.textContent = loadError; resolve(); },
      );
      if (!("IntersectionObserver" in window)) { load(); return; }
      const watcher = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) { watcher.disconnect(); load(); }
      }, { rootMargin: "200px" });
      watcher.observe(root);
    });
  }

  function init() {
    window.DigitPad.ready = Promise.all(Array.from(document.querySelectorAll(".digit-pad")).map(setUp));
  }

  window.DigitPad = { mnistImage };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
