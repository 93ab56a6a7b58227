// The review screen's panel editor (templates/_panel_editor.html): the page's boxes over its line
// art, in page pixels. Boxes are edited here and saved together (POST data-save), so a reviewer can
// make several changes before anything is coloured again; the server checks every box, numbers the
// reading order and re-renders only the panels that changed.
"use strict";

(function () {
  const root = document.getElementById("panel-editor");
  if (!root) return;
  const W = Number(root.dataset.width), H = Number(root.dataset.height);
  const MIN = Number(root.dataset.min), MAX = Number(root.dataset.max), BELOW = Number(root.dataset.below);
  const editable = root.dataset.editable === "1";
  const stage = root.querySelector(".editor-stage");
  const layer = stage.querySelector(".boxes");
  const status = document.getElementById("panel-editor-status");
  const error = document.getElementById("panel-editor-error");
  const data = JSON.parse(document.getElementById("panel-data").textContent);

  const fromPanel = (p) => ({ id: p.id, x: p.bbox[0], y: p.bbox[1], w: p.bbox[2], h: p.bbox[3],
                              polygon: p.polygon, order: p.order, confidence: p.confidence });
  let boxes = data.panels.map(fromPanel);
  let selected = new Set();
  let drawing = false;
  let drag = null;

  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  function say(text) { status.textContent = text; }
  function fail(text) { error.textContent = text; error.hidden = !text; }

  // A box whose geometry a person changed: its own rectangle, no detection confidence, no order yet.
  function touched(b, geometry) {
    return Object.assign(b, geometry, { polygon: null, confidence: 1, order: null });
  }

  function draw() {
    layer.replaceChildren();
    boxes.forEach((b, i) => {
      const el = document.createElement("div");
      el.className = "ebox" + (selected.has(b) ? " selected" : "") + (b.confidence < BELOW ? " unsure" : "");
      el.dataset.index = i;
      if (b.id) el.dataset.panel = b.id;
      el.style.left = (100 * b.x / W) + "%";
      el.style.top = (100 * b.y / H) + "%";
      el.style.width = (100 * b.w / W) + "%";
      el.style.height = (100 * b.h / H) + "%";
      const label = document.createElement("span");
      label.textContent = (b.order === null ? "new" : String(b.order + 1)) + " · " + b.confidence.toFixed(2);
      label.title = "reading order · detection confidence";
      el.append(label);
      if (editable) {
        for (const corner of ["nw", "ne", "sw", "se"]) {
          const handle = document.createElement("i");
          handle.className = "handle " + corner;
          handle.dataset.corner = corner;
          el.append(handle);
        }
      }
      layer.append(el);
    });
    for (const [tool, ok] of [["delete", selected.size > 0], ["merge", selected.size > 1],
                              ["split-x", selected.size === 1], ["split-y", selected.size === 1]]) {
      const button = root.querySelector('[data-tool="' + tool + '"]');
      if (button) button.disabled = !ok;
    }
  }

  // The page point under a pointer event.
  function at(ev) {
    const r = stage.getBoundingClientRect();
    return { x: clamp(Math.round((ev.clientX - r.left) / r.width * W), 0, W),
             y: clamp(Math.round((ev.clientY - r.top) / r.height * H), 0, H) };
  }

  function cornerGeometry(start, corner, p) {
    let x0 = start.x, y0 = start.y, x1 = start.x + start.w, y1 = start.y + start.h;
    if (corner.includes("w")) x0 = clamp(p.x, 0, x1 - MIN); else x1 = clamp(p.x, x0 + MIN, W);
    if (corner.includes("n")) y0 = clamp(p.y, 0, y1 - MIN); else y1 = clamp(p.y, y0 + MIN, H);
    return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  }

  stage.addEventListener("pointerdown", (ev) => {
    if (!editable || ev.button !== 0) return;
    ev.preventDefault();  // no text selection or image drag; so focus the stage by hand, for the keys
    stage.focus({ preventScroll: true });
    fail("");
    const p = at(ev);
    const el = ev.target.closest(".ebox");
    if (drawing || !el) {
      if (!drawing) { selected.clear(); draw(); return; }
      const b = { id: null, x: p.x, y: p.y, w: 0, h: 0, polygon: null, order: null, confidence: 1 };
      boxes.push(b);
      drag = { kind: "new", box: b, from: p };
    } else {
      const b = boxes[Number(el.dataset.index)];
      if (ev.shiftKey) { selected.has(b) ? selected.delete(b) : selected.add(b); }
      else if (!selected.has(b)) { selected = new Set([b]); }
      const corner = ev.target.dataset.corner;
      drag = { kind: corner ? "resize" : "move", corner, box: b, from: p, start: { x: b.x, y: b.y, w: b.w, h: b.h },
               moved: false };
    }
    stage.setPointerCapture(ev.pointerId);
    draw();
  });

  stage.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const p = at(ev), b = drag.box;
    if (drag.kind === "new") {
      Object.assign(b, { x: Math.min(p.x, drag.from.x), y: Math.min(p.y, drag.from.y),
                         w: Math.abs(p.x - drag.from.x), h: Math.abs(p.y - drag.from.y) });
    } else if (drag.kind === "move") {
      const dx = p.x - drag.from.x, dy = p.y - drag.from.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 2) return;  // a click selects; it does not move
      drag.moved = true;
      touched(b, { x: clamp(drag.start.x + dx, 0, W - b.w), y: clamp(drag.start.y + dy, 0, H - b.h) });
    } else {
      drag.moved = true;
      touched(b, cornerGeometry(drag.start, drag.corner, p));
    }
    draw();
  });

  function endDrag() {
    if (!drag) return;
    const b = drag.box;
    if (drag.kind === "new") {
      if (b.w < MIN || b.h < MIN) {
        boxes.splice(boxes.indexOf(b), 1);
        say("A panel is at least " + MIN + "×" + MIN + " pixels: drag further to draw one.");
      } else {
        selected = new Set([b]);
        say("New box drawn; save to keep it.");
      }
    } else if (drag.moved) {
      say("Box changed; save to keep it.");
    }
    drag = null;
    draw();
  }
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);

  function split(axis) {
    const [b] = selected;
    const parts = axis === "x"
      ? [{ x: b.x, y: b.y, w: Math.floor(b.w / 2), h: b.h }, { x: b.x + Math.floor(b.w / 2), y: b.y, w: b.w - Math.floor(b.w / 2), h: b.h }]
      : [{ x: b.x, y: b.y, w: b.w, h: Math.floor(b.h / 2) }, { x: b.x, y: b.y + Math.floor(b.h / 2), w: b.w, h: b.h - Math.floor(b.h / 2) }];
    if (parts.some((q) => q.w < MIN || q.h < MIN)) return fail("This box is too small to split: each part needs " + MIN + " pixels.");
    const made = parts.map((q) => touched({ id: null }, q));
    boxes.splice(boxes.indexOf(b), 1, ...made);
    selected = new Set(made);
    say("Box split in two; drag the halves to where the panels are, then save.");
  }

  async function save(confirm) {
    fail("");
    if (boxes.length === 0) return fail("A page needs at least one panel.");
    if (boxes.length > MAX) return fail("A page has at most " + MAX + " panels.");
    const panels = boxes.map((b) => Object.assign(b.id ? { id: b.id } : {}, { bbox: [b.x, b.y, b.w, b.h] },
                                                  b.polygon ? { polygon: b.polygon } : {}));
    say("Saving…");
    const token = document.querySelector('meta[name="csrf-token"]').content;
    try {
      const resp = await fetch(root.dataset.save, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ panels, confirm }),
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) { say(""); return fail(body.message || "The boxes could not be saved (" + resp.status + ")."); }
      window.location.assign(body.url);
    } catch (e) {
      say("");
      fail("The boxes could not be saved: the server cannot be reached.");
    }
  }

  const tools = {
    draw(button) {
      drawing = !drawing;
      button.setAttribute("aria-pressed", String(drawing));
      stage.classList.toggle("drawing", drawing);
      say(drawing ? "Drag on the page to draw a box." : "");
    },
    delete() { boxes = boxes.filter((b) => !selected.has(b)); selected.clear(); say("Box deleted; save to keep the change."); },
    merge() {
      const chosen = boxes.filter((b) => selected.has(b));
      const x0 = Math.min(...chosen.map((b) => b.x)), y0 = Math.min(...chosen.map((b) => b.y));
      const x1 = Math.max(...chosen.map((b) => b.x + b.w)), y1 = Math.max(...chosen.map((b) => b.y + b.h));
      const merged = touched({ id: null }, { x: x0, y: y0, w: x1 - x0, h: y1 - y0 });
      boxes = boxes.filter((b) => !selected.has(b)).concat([merged]);
      selected = new Set([merged]);
      say(chosen.length + " boxes merged into one; save to keep it.");
    },
    "split-x"() { split("x"); },
    "split-y"() { split("y"); },
    reset() { boxes = data.panels.map(fromPanel); selected.clear(); say("Boxes as saved."); },
    save() { save(false); },
    confirm() { save(true); },
  };
  // With the editor focused: arrow keys nudge the selected boxes (1 pixel, 10 with shift), Delete removes them.
  stage.addEventListener("keydown", (ev) => {
    if (!editable || selected.size === 0) return;
    const step = ev.shiftKey ? 10 : 1;
    const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[ev.key];
    if (move) {
      for (const b of selected) touched(b, { x: clamp(b.x + move[0], 0, W - b.w), y: clamp(b.y + move[1], 0, H - b.h) });
      say("Box moved; save to keep it.");
    } else if (ev.key === "Delete" || ev.key === "Backspace") {
      tools.delete();
    } else {
      return;
    }
    ev.preventDefault();
    draw();
  });
  root.querySelectorAll("[data-tool]").forEach((button) => button.addEventListener("click", () => {
    tools[button.dataset.tool](button);
    draw();
  }));
  draw();
})();
