// panelpaint dashboard: live progress by polling, the before/after slider, colour hint dots placed
// on panels, variants shown as they finish, the 100% zoom view, and reviewer keyboard shortcuts. Plain JavaScript, no libraries; the pages work without it.
"use strict";

const FINAL = new Set(["succeeded", "failed", "cancelled", "done", "empty"]);

function setBadge(el, state) {
  if (!el) return;
  el.textContent = state;
  el.className = "badge " + state;
}

// A browser notification for the person who sent a batch, when it ends while a dashboard page
// that follows it is open (permission is asked when a batch is sent, or with "Notify me").
const lastState = new Map();

function notifyEnd(b) {
  const before = lastState.get(b.id);
  lastState.set(b.id, b.state);
  if (!b.mine || before === undefined || FINAL.has(before) || !(b.state === "done" || b.state === "failed")) return;
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  new Notification(b.name + (b.state === "failed" ? ": failed" : ": done"), { body: b.summary, tag: "batch-" + b.id });
}

function askToNotify() {
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
}

// Live progress: every element with data-poll="<url>" is refreshed from that JSON endpoint until
// everything it shows has reached a final state.
function updateBatch(root, b) {
  notifyEnd(b);
  for (const scope of root.querySelectorAll('[data-batch="' + b.id + '"]')) {
    const bar = scope.querySelector("progress[data-progress]");
    if (bar) { bar.max = Math.max(b.total, 1); bar.value = b.finished; }
    setBadge(scope.querySelector("[data-state]"), b.state);
    const counts = scope.querySelector("[data-counts]");
    if (counts) counts.textContent = b.summary;
    const eta = scope.querySelector("[data-eta]");
    if (eta) eta.textContent = b.eta || "";
    const unpacking = scope.querySelector("[data-unpacking]");
    if (unpacking) {
      unpacking.textContent = (b.unpacking || []).map((u) =>
        "Unpacking " + u.files.join(", ") + ": " + u.pages_added + " of " + u.pages_expected + " page(s) read").join("; ");
    }
  }
  // Pages an io worker added since this page was drawn: draw the page again to show them.
  if (b.pages && b.pages.some((p) => !root.querySelector('[data-page="' + p.id + '"]')) && !(b.unpacking || []).length) {
    redraw();
  }
  for (const p of b.pages || []) {
    const card = root.querySelector('[data-page="' + p.id + '"]');
    if (!card) continue;
    const badge = card.querySelector("[data-status]");
    const img = card.querySelector("img[data-thumb]");
    if (badge && badge.textContent !== p.status) {
      setBadge(badge, p.status);
      if (img && p.thumb_url) img.src = p.thumb_url;
    }
    // The thumbnail an io worker made since this page was drawn (the web never makes one itself).
    const waiting = card.querySelector("[data-thumb-pending]");
    if (!img && waiting && p.thumb_url) {
      const made = document.createElement("img");
      made.dataset.thumb = "";
      made.src = p.thumb_url;
      made.alt = p.name;
      waiting.replaceWith(made);
    }
    const err = card.querySelector("[data-error]");
    if (err) err.textContent = p.error || "";
    const check = card.querySelector("[data-check]");  // held for its panel check
    if (check) check.hidden = p.panel_check !== "awaiting";
    const stage = card.querySelector("[data-stage]");
    if (stage) stage.textContent = p.stage_label;
    const pp = card.querySelector("progress[data-page-progress]");
    if (pp) pp.value = Math.round(p.progress * 100);
  }
}

// The page draws itself again (new pages, a batch that finished) without losing the messages it
// was drawn with: the server shows a flash once, and "unpacking 2 page(s)" must not vanish the
// moment those pages arrive. Kept as text per path, for the one reload.
const FLASH_KEY = "panelpaint.flashes:";

function redraw() {
  const flashes = [...document.querySelectorAll("main > .flash")].map((f) => ({
    category: [...f.classList].filter((c) => c !== "flash").join(" "), text: f.textContent }));
  try {
    sessionStorage.setItem(FLASH_KEY + window.location.pathname, JSON.stringify(flashes));
  } catch (e) { /* storage off: the page still redraws, without its messages */ }
  window.location.reload();
}

function restoreFlashes() {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(FLASH_KEY + window.location.pathname) || "null");
    sessionStorage.removeItem(FLASH_KEY + window.location.pathname);
  } catch (e) { return; }
  const main = document.querySelector("main");
  if (!kept || !main || main.querySelector(":scope > .flash")) return;
  for (const f of kept.reverse()) {
    const div = document.createElement("div");
    div.className = ("flash " + f.category).trim();
    div.setAttribute("role", "status");
    div.textContent = f.text;
    main.prepend(div);
  }
}

function startPolling(el) {
  const url = el.dataset.poll;
  let timer = null;
  let sawActive = false;
  let etag = null;
  let last = null;
  async function tick() {
    try {
      // The status endpoints answer 304 with no body while nothing changed (their ETag): the
      // server sends and this page redraws only what is new.
      const headers = { Accept: "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      const resp = await fetch(url, { headers, credentials: "same-origin", cache: "no-store" });
      let data = last;
      if (resp.status === 304 && last) {
        el.dataset.notModified = String(Number(el.dataset.notModified || 0) + 1);
      } else if (resp.ok) {
        data = await resp.json();
        etag = resp.headers.get("ETag");
        last = data;
        const batches = data.batches || [data];
        batches.forEach((b) => updateBatch(el, b));
      } else {
        return schedule(5000);
      }
      const batches = data.batches || [data];
      if (batches.some((b) => !FINAL.has(b.state))) {
        sawActive = true;
        schedule(1500);
      } else {
        el.dataset.settled = "true";
        // Finished while we watched: reload once so review and download actions appear.
        if (sawActive && "reloadWhenDone" in el.dataset) redraw();
      }
    } catch (e) {
      schedule(5000);
    }
  }
  function schedule(ms) { clearTimeout(timer); timer = setTimeout(tick, ms); }
  tick();
}

// Before/after: the colour result is drawn over the line art and clipped at the slider's value.
function initCompare(compare) {
  const after = compare.querySelector(".after");
  const slider = document.querySelector('input.slider[data-target="' + compare.id + '"]');
  if (!after || !slider) return;
  const apply = () => { after.style.clipPath = "inset(0 " + (100 - slider.value) + "% 0 0)"; };
  slider.addEventListener("input", apply);
  apply();
}

// Panel outlines and the dots of the hints the shown result used are placed from their page-pixel
// geometry (no inline styles in the markup: the CSP forbids them; the CSSOM is fine).
function placeBoxes(compare) {
  const width = Number(compare.dataset.width), height = Number(compare.dataset.height);
  for (const box of compare.querySelectorAll(".box[data-x]")) {
    box.style.left = (100 * box.dataset.x / width) + "%";
    box.style.top = (100 * box.dataset.y / height) + "%";
    box.style.width = (100 * box.dataset.w / width) + "%";
    box.style.height = (100 * box.dataset.h / height) + "%";
  }
  for (const dot of compare.querySelectorAll(".dot.used")) {
    dot.style.left = (100 * dot.dataset.x / width) + "%";
    dot.style.top = (100 * dot.dataset.y / height) + "%";
    dot.style.background = dot.dataset.color;
  }
}

// Colour hints: a click on a panel of the result places a dot of the chosen colour on that panel
// (a click on a gutter places nothing: a hint colours a region of a panel). The re-render form's
// "What" follows the dots: the panel they are all on, or the whole page when they span several.
// The hidden input carries the dots to the form in page pixels.
function initHints(compare) {
  const field = document.getElementById("hints");
  const colour = document.getElementById("hint-color");
  if (!field || !colour) return;
  const layer = compare.querySelector(".dots");
  const what = document.getElementById("rr-panel");
  const count = document.getElementById("hint-count");
  const width = Number(compare.dataset.width), height = Number(compare.dataset.height);
  const panels = Array.from(compare.querySelectorAll(".box[data-panel]")).map((b) => ({
    id: b.dataset.panel, position: b.dataset.position,
    x: Number(b.dataset.x), y: Number(b.dataset.y), w: Number(b.dataset.w), h: Number(b.dataset.h),
  }));
  const panelAt = (x, y) => panels.find((p) => p.x <= x && x < p.x + p.w && p.y <= y && y < p.y + p.h);
  let hints = [];
  function draw(message) {
    layer.replaceChildren();
    for (const h of hints) {
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.left = (100 * h.x / width) + "%";
      dot.style.top = (100 * h.y / height) + "%";
      dot.style.background = h.color;
      layer.appendChild(dot);
    }
    field.value = JSON.stringify(hints.map((h) => ({ x: h.x, y: h.y, color: h.color })));
    const on = [...new Set(hints.filter((h) => h.panel).map((h) => h.panel.position))];
    if (what && hints.length) what.value = on.length === 1 ? hints[0].panel.id : "";
    if (count) {
      const where = !on.length ? "" : " on panel " + on.join(", ") + (on.length > 1 ? ": the whole page is re-rendered" : "");
      count.textContent = message || (hints.length ? hints.length + " hint(s)" + where : "no hints");
    }
  }
  compare.addEventListener("click", (ev) => {
    const box = compare.getBoundingClientRect();
    const x = Math.round((ev.clientX - box.left) / box.width * width);
    const y = Math.round((ev.clientY - box.top) / box.height * height);
    const panel = panelAt(x, y);
    if (panels.length && !panel) { draw("Click inside a panel: a hint colours a region of a panel."); return; }
    hints.push({ x: x, y: y, color: colour.value, panel: panel || null });  // null: the page's panels are not known yet
    draw();
  });
  const clear = document.getElementById("clear-hints");
  if (clear) clear.addEventListener("click", () => { hints = []; draw(); });
  draw();
}

// Variants: the set's cells are refreshed from the review screen's JSON while any is colouring, so
// each result appears beside the others as it finishes, with its pick button.
function initVariants(root) {
  const url = root.dataset.variants;
  async function tick() {
    let active = true;
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (resp.ok) {
        const set = (await resp.json()).variant_set;
        active = Boolean(set && set.active);
        for (const r of (set ? set.renders : [])) {
          const cell = root.querySelector('[data-render="' + r.id + '"]');
          if (!cell) continue;
          setBadge(cell.querySelector("[data-status]"), r.status);
          const wait = cell.querySelector("[data-wait]");
          if (wait && r.thumb_url) {
            const link = document.createElement("a");
            link.href = r.thumb_url.replace(/\?size=\d+$/, "");
            link.target = "_blank";
            link.rel = "noopener";
            const img = document.createElement("img");
            img.src = r.thumb_url;
            img.alt = "variant v" + r.version;
            img.dataset.thumb = "";
            link.appendChild(img);
            wait.replaceWith(link);
          } else if (wait && r.status === "failed") {
            wait.textContent = "failed" + (r.error ? ": " + r.error : "");
          }
          const pick = cell.querySelector("[data-pick]");
          if (pick) pick.hidden = !(r.status === "succeeded" && !r.current);
        }
      }
    } catch (e) { /* keep the last view; try again */ }
    if (active) setTimeout(tick, 1500);
    else root.dataset.settled = "true";
  }
  tick();
}

// The 100% view: the result and a "before" (line art or an earlier result) at native size, side by
// side; dragging or scrolling either pans both, so the same lines are always compared. The images
// are made only when the view is first opened (they are full size).
function initZoom(root) {
  const views = Array.from(root.querySelectorAll(".zoom-view"));
  let before = null;
  const choose = document.getElementById("zoom-before");
  const goto = document.getElementById("zoom-panel");
  let syncing = false;
  const panTo = (left, top, from) => {
    if (syncing) return;
    syncing = true;
    for (const v of views) if (v !== from) { v.scrollLeft = left; v.scrollTop = top; }
    syncing = false;
  };
  for (const v of views) {
    v.addEventListener("scroll", () => panTo(v.scrollLeft, v.scrollTop, v));
    let start = null;
    v.addEventListener("pointerdown", (ev) => {
      start = { x: ev.clientX, y: ev.clientY, left: v.scrollLeft, top: v.scrollTop };
      v.setPointerCapture(ev.pointerId);
      v.classList.add("dragging");
      ev.preventDefault();
    });
    v.addEventListener("pointermove", (ev) => {
      if (!start) return;
      v.scrollLeft = start.left - (ev.clientX - start.x);
      v.scrollTop = start.top - (ev.clientY - start.y);
    });
    const stop = () => { start = null; v.classList.remove("dragging"); };
    v.addEventListener("pointerup", stop);
    v.addEventListener("pointercancel", stop);
  }
  if (choose) choose.addEventListener("change", () => { if (before) before.src = choose.value; });
  if (goto) goto.addEventListener("change", () => {
    const opt = goto.selectedOptions[0];
    const x = Number(opt.dataset.x || 0), y = Number(opt.dataset.y || 0);
    panTo(x, y, null);
  });
  const open = () => {
    for (const view of root.querySelectorAll(".zoom-view[data-src]")) {
      const img = document.createElement("img");
      img.src = view.dataset.zoom === "before" && choose ? choose.value : view.dataset.src;
      img.alt = view.getAttribute("aria-label");
      view.removeAttribute("data-src");
      view.appendChild(img);
      if (view.dataset.zoom === "before") before = img;
    }
    root.hidden = false;
    root.scrollIntoView({ block: "start" });
    views[1].focus();
  };
  const close = () => { root.hidden = true; };
  const opener = document.getElementById("zoom-open");
  if (opener) opener.addEventListener("click", open);
  document.getElementById("zoom-close").addEventListener("click", close);
  root.toggle = () => (root.hidden ? open() : close());
  root.close = close;
}

// Reviewer shortcuts: j/k next/previous page, a approve, r reject, u undo, z the 100% view, s focus
// the slider, ? help.
function initShortcuts() {
  const help = document.getElementById("shortcut-help");
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = (ev.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) && ev.target.type !== "range") return;
    const click = (id) => { const el = document.getElementById(id); if (el) { ev.preventDefault(); el.click(); } };
    switch (ev.key) {
      case "j": click("next-page"); break;
      case "k": click("prev-page"); break;
      case "a": click("approve-button"); break;
      case "r": click("reject-button"); break;
      case "u": if (document.getElementById("undo-last")) click("undo-last"); else click("undo-button"); break;
      case "z": { const z = document.getElementById("zoom"); if (z && z.toggle) { ev.preventDefault(); z.toggle(); } break; }
      case "Escape": { const z = document.getElementById("zoom"); if (z && z.close) z.close(); break; }
      case "c": { const box = document.getElementById("comment"); if (box) { ev.preventDefault(); box.focus(); } break; }
      case "s": { const s = document.querySelector("input.slider"); if (s) { ev.preventDefault(); s.focus(); } break; }
      case "?": if (help) help.hidden = !help.hidden; break;
    }
  });
}

// Workers screen: the live workers at once (the page is drawn without waiting for their replies),
// then queue lengths and workers every few seconds.
const DEVICES = { cuda: "GPU (CUDA)", mps: "GPU (Apple MPS)", cpu: "CPU" };

function initWorkers(root) {
  const url = root.dataset.workers;
  const cell = (text, code) => {
    const td = document.createElement("td");
    if (code) { const c = document.createElement("code"); c.textContent = text; td.appendChild(c); }
    else td.textContent = text;
    return td;
  };
  async function tick() {
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (resp.ok) {
        const data = await resp.json();
        const err = document.getElementById("broker-error");
        err.textContent = data.error || "";
        err.hidden = !data.error;
        for (const [name, length] of Object.entries(data.queues || {})) {
          const row = root.querySelector('[data-queue="' + name + '"] [data-length]');
          if (row) row.textContent = length;
        }
        const body = document.getElementById("worker-rows");
        if (data.workers && data.workers.length) {
          body.replaceChildren(...data.workers.map((w) => {
            const tr = document.createElement("tr");
            tr.append(cell(w.name, true), cell((w.queues || []).join(", ")),
                      cell(w.device ? (DEVICES[w.device] || w.device) : "—"), cell(String(w.active)),
                      cell(w.concurrency == null ? "" : String(w.concurrency)), cell(w.pid == null ? "" : String(w.pid)));
            return tr;
          }));
        } else if (!data.error) {
          const tr = document.createElement("tr");
          const td = cell("No worker answered. Start one with panelpaint worker (or panelpaint up).");
          td.colSpan = 6;
          td.className = "muted";
          tr.appendChild(td);
          body.replaceChildren(tr);
        }
      }
    } catch (e) { /* keep the last view; try again */ }
    setTimeout(tick, 5000);
  }
  tick();
}

// Forms that ask before doing something that cannot be undone (cancel a batch).
function initConfirm() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (ev) => { if (!window.confirm(form.dataset.confirm)) ev.preventDefault(); });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  restoreFlashes();
  document.querySelectorAll("[data-poll]").forEach(startPolling);
  document.querySelectorAll("form[data-ask-notify]").forEach((f) => f.addEventListener("submit", askToNotify));
  document.querySelectorAll("button[data-notify]").forEach((button) => {
    if (!("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", () => { askToNotify(); button.hidden = true; });
  });
  document.querySelectorAll(".compare").forEach((c) => { initCompare(c); placeBoxes(c); initHints(c); });
  if (document.body.dataset.page === "review.page") initShortcuts();
  document.querySelectorAll("[data-workers]").forEach(initWorkers);
  document.querySelectorAll("[data-variants]").forEach(initVariants);
  document.querySelectorAll("#zoom").forEach(initZoom);
  initConfirm();
  document.body.dataset.ready = "1";  // every control is live (browser tests wait for this)
});
