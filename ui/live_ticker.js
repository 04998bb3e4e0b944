// The live numbers and curves of a training run, drawn by the browser itself (ui/live_ticker.py mounts this).
//
// Each part on the page (the numbers, the curves, the sidebar's progress bar) subscribes to one feed per run: a
// request to ui/live_api.py every few seconds while the run trains and the tab is visible, for the numbers and the
// training points not yet seen. Nothing here reruns the page's Python, except when a value a part watches changes
// (the panel: the run's signature, core/live_feed.py; the sidebar: whether the run trains, and the runs folder;
// the Tune page: a search's or a learning curve's record).
//
// Every string from the run (numbers, labels from the server) is set as text, never as markup.

const feeds = new Map(); // url -> Feed: one request per run and interval, shared by the parts of the page
const parts = new WeakMap(); // the part mounted in each component root

function visible() {
  return document.visibilityState !== "hidden";
}

document.addEventListener("visibilitychange", () => {
  if (visible()) for (const feed of feeds.values()) feed.poll(); // back in front: fresh numbers at once
});

let resizing = null;
window.addEventListener("resize", () => {
  // The canvases take the new width once the window has settled.
  clearTimeout(resizing);
  resizing = setTimeout(() => {
    for (const feed of feeds.values()) if (feed.snap) for (const part of feed.parts) part.view.render(feed, part.data);
  }, 200);
});

class Feed {
  constructor(url, pollMs) {
    this.url = url;
    this.pollMs = pollMs;
    this.parts = new Set();
    this.train = [];
    this.evals = [];
    this.next = 0;
    this.snap = null;
    this.timer = null;
    this.busy = false;
    this.failures = 0;
  }

  add(part) {
    this.parts.add(part);
    if (this.snap) part.render(this);
    // A feed that stopped at its job's end asks again: the job may have been resumed under the same name.
    if (!this.busy && !(this.snap && this.snap.active)) this.poll();
  }

  remove(part) {
    this.parts.delete(part);
    if (!this.parts.size) {
      clearTimeout(this.timer);
      feeds.delete(this.url);
    }
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), ms);
  }

  async poll() {
    if (this.busy || !this.parts.size) return;
    if (!visible() && this.snap) return; // hidden: no timer; the visibility listener polls on return
    this.busy = true;
    let ok = false;
    try {
      const response = await fetch(`${this.url}?since=${this.next}`, { cache: "no-store", credentials: "same-origin" });
      if (response.ok) {
        const snap = await response.json();
        if (snap.since === 0) this.train = [];
        this.train = this.train.concat(snap.train || []);
        this.evals = snap.evals || [];
        this.next = snap.next || 0;
        this.snap = snap;
        ok = true;
        for (const part of this.parts) part.render(this);
      }
    } catch (err) {
      // The server restarted or the network dropped: keep what is drawn and ask again later.
    } finally {
      this.busy = false;
    }
    this.failures = ok ? 0 : this.failures + 1;
    if (!this.parts.size) return;
    if (ok && !this.snap.active) return; // the run has ended: the page's rerun draws the rest
    if (visible()) this.schedule(this.pollMs * Math.min(2 ** this.failures, 8));
  }
}

function feedFor(url, pollMs) {
  let feed = feeds.get(url);
  if (!feed) {
    feed = new Feed(url, pollMs);
    feeds.set(url, feed);
  }
  return feed;
}

// "{m} min {s:02d} s" with {m: 3, s: 5} -> "3 min 05 s"
function fill(template, values) {
  return String(template).replace(/\{(\w+)(?::0?(\d+)d)?\}/g, (whole, name, width) => {
    if (!(name in values)) return whole;
    const text = String(values[name]);
    return width ? text.padStart(Number(width), "0") : text;
  });
}

function duration(seconds, text) {
  if (seconds === null || seconds === undefined || !(seconds >= 0)) return "–";
  const s = Math.round(seconds);
  if (s < 60) return fill(text.seconds, { s });
  if (s < 3600) return fill(text.minutes, { m: Math.floor(s / 60), s: s % 60 });
  return fill(text.hours, { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

// As ui/format.metric shows a score (JSON does not tell 1.0 from 1: every score is shown as a float).
function metric(value) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) < 1000 ? value.toFixed(4) : Math.round(value).toLocaleString("en-US");
}

// What a screen reader says of a progress bar.
function describeProgress(track, label, step, total) {
  const attrs = { "aria-label": label, "aria-valuemin": "0", "aria-valuemax": String(total || 0), "aria-valuenow": String(step || 0) };
  for (const [name, value] of Object.entries(attrs)) if (track.getAttribute(name) !== value) track.setAttribute(name, value);
}

function el(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text; // an unchanged node is left alone: no relayout
}

// The progress bar and the five numbers of the live panel.
class Numbers {
  constructor(root) {
    this.root = el("div", "live-numbers", root);
    const progress = el("div", "progress", this.root);
    this.progressText = el("div", "progress-text", progress);
    this.track = el("div", "track", progress);
    this.track.setAttribute("role", "progressbar");
    this.bar = el("div", "bar", this.track);
    this.cells = [];
    const row = el("div", "metrics", this.root);
    for (let i = 0; i < 5; i++) {
      const cell = el("div", "metric", row);
      this.cells.push({ label: el("div", "label", cell), value: el("div", "value", cell) });
    }
  }

  render(feed, data) {
    const snap = feed.snap;
    const text = data.text;
    const total = snap.total || 0;
    setText(this.progressText, fill(text.progress, { step: snap.step, total: total || "?" }));
    this.bar.style.width = `${total ? Math.min(100, (100 * snap.step) / total) : 0}%`;
    describeProgress(this.track, this.progressText.textContent, snap.step, total);
    const latest = snap.latest || {};
    const headline = Object.keys(text.headlines).find((k) => k in latest);
    const values = [
      [text.speed, (snap.samples_per_s || 0).toFixed(1)],
      [text.elapsed, duration(snap.elapsed_s, text)],
      [text.eta, snap.active ? duration(snap.eta_s, text) : "–"],
      [text.val_loss, "val_loss" in latest ? metric(latest.val_loss) : "–"],
      [headline ? text.headlines[headline] : text.score, headline ? metric(latest[headline]) : "–"],
    ];
    values.forEach(([label, value], i) => {
      setText(this.cells[i].label, label);
      setText(this.cells[i].value, value);
    });
  }
}

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function tickText(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

// One line chart on a canvas: a title, a legend, axes with a few ticks, and series of [x, y] points (y null: a gap).
class Chart {
  constructor(root, height) {
    this.box = el("div", "chart", root);
    this.canvas = el("canvas", null, this.box);
    this.canvas.setAttribute("role", "img");
    this.tip = el("div", "tip", this.box);
    this.height = height;
    this.shown = null; // what the last drawing showed, for the values under the pointer
    this.canvas.addEventListener("mousemove", (event) => this.point(event));
    this.canvas.addEventListener("mouseleave", () => { this.tip.style.display = "none"; });
  }

  // The values of each curve nearest the pointer's x, as the charts after the run show them on hover.
  point(event) {
    const shown = this.shown;
    if (!shown) return;
    const { plot, x0, x1, series, xTitle } = shown;
    const rect = this.canvas.getBoundingClientRect();
    const mx = event.clientX - rect.left;
    if (mx < plot.left || mx > plot.right) { this.tip.style.display = "none"; return; }
    const x = x0 + ((mx - plot.left) / (plot.right - plot.left)) * (x1 - x0);
    const lines = [];
    let at = null;
    for (const s of series) {
      let best = null;
      for (const p of s.points) if (p[0] !== null && p[1] !== null && (best === null || Math.abs(p[0] - x) < Math.abs(best[0] - x))) best = p;
      if (!best) continue;
      if (at === null) at = best[0];
      lines.push(`${s.name}: ${tickText(best[1])}`);
    }
    if (!lines.length) { this.tip.style.display = "none"; return; }
    this.tip.replaceChildren();
    for (const line of [`${xTitle}: ${tickText(at)}`, ...lines]) el("div", null, this.tip).textContent = line;
    this.tip.style.display = "block";
    this.tip.style.left = `${Math.min(mx + 12, rect.width - this.tip.offsetWidth - 4)}px`;
    this.tip.style.top = `${Math.max(event.clientY - rect.top - 40, 0)}px`;
  }

  draw({ title, xTitle, yTitle, series, logY }) {
    const width = Math.max(this.box.clientWidth, 200);
    const ratio = window.devicePixelRatio || 1;
    const canvas = this.canvas;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(this.height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(this.height * ratio);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${this.height}px`;
    }
    canvas.setAttribute("aria-label", title);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, this.height);
    const ink = "rgb(49, 51, 63)";
    const faint = "rgba(49, 51, 63, 0.12)";
    g.font = "bold 16px 'Source Sans Pro', sans-serif";
    g.fillStyle = ink;
    g.textBaseline = "alphabetic";
    g.fillText(title, 8, 22);

    const plot = { left: 64, right: width - 20, top: 50, bottom: this.height - 46 };
    const ys = (v) => (logY ? (v > 0 ? Math.log10(v) : null) : v);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const s of series)
      for (const [x, y] of s.points) {
        const yy = y === null ? null : ys(y);
        if (x === null || yy === null) continue;
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, yy); y1 = Math.max(y1, yy);
      }
    // Legend, right-aligned above the plot, as the charts after the run have it.
    g.font = "13px 'Source Sans Pro', sans-serif";
    let lx = plot.right;
    for (const s of [...series].reverse()) {
      const w = g.measureText(s.name).width;
      lx -= w;
      g.fillStyle = ink;
      g.fillText(s.name, lx, 40);
      lx -= 26;
      g.strokeStyle = s.colour;
      g.lineWidth = 2;
      g.beginPath(); g.moveTo(lx, 36); g.lineTo(lx + 20, 36); g.stroke();
      lx -= 16;
    }
    if (x0 === Infinity) { this.shown = null; return; }
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    this.shown = { plot, x0, x1, series, xTitle };
    const px = (x) => plot.left + ((x - x0) / (x1 - x0)) * (plot.right - plot.left);
    const py = (y) => plot.bottom - ((y - y0) / (y1 - y0)) * (plot.bottom - plot.top);

    g.lineWidth = 1;
    g.fillStyle = "rgba(49, 51, 63, 0.7)";
    g.font = "12px 'Source Sans Pro', sans-serif";
    g.textAlign = "right";
    // On a log axis the ticks are round values too (0.5, 0.6, 0.8 within a decade), placed at their logarithm.
    // Over more than a decade: the powers of ten.
    let yTicks;
    if (!logY) yTicks = niceTicks(y0, y1, 5).map((v) => [v, v]);
    else if (y1 - y0 > 1) yTicks = niceTicks(Math.ceil(y0), Math.floor(y1), 5).map((k) => [k, 10 ** k]);
    else yTicks = niceTicks(10 ** y0, 10 ** y1, 5).filter((v) => v > 0).map((v) => [Math.log10(v), v]);
    for (const [at, value] of yTicks) {
      const y = py(at);
      g.strokeStyle = faint;
      g.beginPath(); g.moveTo(plot.left, y); g.lineTo(plot.right, y); g.stroke();
      g.fillText(tickText(value), plot.left - 6, y + 4);
    }
    g.textAlign = "center";
    for (const t of niceTicks(x0, x1, 6)) g.fillText(tickText(t), px(t), plot.bottom + 16);
    g.font = "13px 'Source Sans Pro', sans-serif";
    g.fillText(xTitle, (plot.left + plot.right) / 2, this.height - 10);
    g.save();
    g.translate(14, (plot.top + plot.bottom) / 2);
    g.rotate(-Math.PI / 2);
    g.fillText(yTitle, 0, 0);
    g.restore();
    g.textAlign = "left";

    for (const s of series) {
      // No more than about two points a pixel: a long run's thousands of steps draw as fast as a short one's.
      const stride = Math.max(1, Math.floor(s.points.length / (2 * (plot.right - plot.left))));
      g.strokeStyle = s.colour;
      g.fillStyle = s.colour;
      g.lineWidth = 2;
      g.beginPath();
      let open = false;
      for (let i = 0; i < s.points.length; i += stride) {
        const [x, y] = s.points[i];
        const yy = y === null ? null : ys(y);
        if (x === null || yy === null) { open = false; continue; }
        if (open) g.lineTo(px(x), py(yy)); else g.moveTo(px(x), py(yy));
        open = true;
      }
      g.stroke();
      if (s.markers)
        for (const [x, y] of s.points) {
          const yy = y === null ? null : ys(y);
          if (x === null || yy === null) continue;
          g.beginPath(); g.arc(px(x), py(yy), 4, 0, 2 * Math.PI); g.fill();
        }
    }
  }
}

// The two live charts: loss (training and validation) and learning rate, against steps or epochs.
class Curves {
  constructor(root) {
    this.root = el("div", "live-curves", root);
    this.loss = new Chart(this.root, 340);
    this.lr = new Chart(this.root, 260);
  }

  render(feed, data) {
    const text = data.text;
    const xi = data.x === "epoch" ? 1 : 0;
    const xTitle = data.x === "epoch" ? text.x_epoch : text.x_step;
    const train = feed.train.map((p) => [p[xi], p[2]]);
    const series = [{ name: text.loss_train, colour: "#0068c9", points: train }];
    if (feed.evals.length)
      series.push({ name: text.loss_val, colour: "#83c9ff", markers: true, points: feed.evals.map((p) => [p[xi], p[2]]) });
    this.loss.draw({ title: text.loss_title, xTitle, yTitle: text.loss_y, series, logY: !!data.log_y });
    const lr = [{ name: text.lr_name, colour: "#0068c9", points: feed.train.map((p) => [p[xi], p[3]]) }];
    this.lr.draw({ title: text.lr_title, xTitle, yTitle: text.lr_y, series: lr, logY: false });
  }
}

// The sidebar's line for a run: its progress bar.
class Bar {
  constructor(root) {
    this.root = el("div", "live-bar", root);
    this.text = el("div", "progress-text small", this.root);
    this.track = el("div", "track", this.root);
    this.track.setAttribute("role", "progressbar");
    this.bar = el("div", "bar", this.track);
  }

  render(feed, data) {
    const snap = feed.snap;
    const total = snap.total || 0;
    setText(this.text, fill(data.text.progress, { step: snap.step, total: total || "?" }));
    this.bar.style.width = `${total ? Math.min(100, (100 * snap.step) / total) : 0}%`;
    describeProgress(this.track, this.text.textContent, snap.step, total);
  }
}

// Draws nothing: a part that only watches (the Tune page's search), to ask for a rerun when it changes.
class Watch {
  render() {}
}

const KINDS = { numbers: Numbers, curves: Curves, bar: Bar, watch: Watch };

class Part {
  constructor(root, data) {
    this.view = new KINDS[data.part](root);
    this.data = data;
    this.asked = null;
  }

  render(feed) {
    const snap = feed.snap;
    this.view.render(feed, this.data);
    // A rerun redraws what the browser cannot (the diagnosis, the probes, the controls, the end of the run), once
    // per change: the rerun mounts this part again with the values it watches as they are now.
    const watch = this.data.watch || {};
    const seen = JSON.stringify(Object.keys(watch).map((k) => snap[k]));
    if (Object.keys(watch).some((k) => snap[k] !== watch[k]) && this.asked !== seen) {
      this.asked = seen;
      this.setTriggerValue("changed", seen);
    }
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let part = parts.get(parentElement);
  if (part && part.data.url !== data.url) {
    part.feed.remove(part);
    parentElement.replaceChildren();
    part = null;
  }
  if (!part) {
    part = new Part(parentElement, data);
    part.feed = feedFor(data.url, data.poll_ms);
    parts.set(parentElement, part);
  }
  part.data = data; // a rerun brings new labels, axis, scale or signature
  part.setTriggerValue = setTriggerValue;
  part.feed.add(part);
  return () => {
    part.feed.remove(part);
    parts.delete(parentElement);
  };
}
