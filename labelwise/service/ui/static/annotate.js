// The annotator page: one item at a time, keyboard first.
// Item data is only ever written with textContent, never parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("annotate");
  if (!root) return;
  var project = root.dataset.project;
  var multi = root.dataset.multiLabel === "true";
  var textField = root.dataset.textField || "";
  var shownFields = [];
  try { shownFields = JSON.parse(root.dataset.fields || "[]"); } catch (e) { shownFields = []; }
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var enc = encodeURIComponent;
  var base = "/ui/api/projects/" + enc(project);

  var queue = [];          // claims: {lease_id, item, reason, key}; queue[0] is shown
  var empty = null;        // why the queue has nothing more: exhausted, cap_reached
  var filling = null;      // the prefetch in flight
  var busy = false;        // an action in flight
  var selected = [];       // picked labels
  var shownAt = Date.now();

  var el = function (id) { return document.getElementById(id); };
  var buttons = Array.prototype.slice.call(document.querySelectorAll(".label-button"));

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function api(method, path, body) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { ok: r.ok, status: r.status, data: data };
      });
    });
  }

  function flash(text, kind) {
    var f = el("flash");
    f.textContent = text || "";
    f.className = kind || "";
  }

  function errorText(res) {
    if (res.status === 401 || (res.data.error && res.data.error.code === "csrf_rejected")) {
      return "Your session ended. Reload the page and log in again.";
    }
    var err = res.data && res.data.error;
    return err ? err.message : "Request failed (" + res.status + ").";
  }

  function labelText(label) {
    return Array.isArray(label) ? label.join(", ") : String(label);
  }

  // ------------------------------------------------------------- rendering

  function isImage(value) {
    // An http(s) URL, or a path ending in .png/.jpg/.jpeg (never javascript: or
    // data:). A path that climbs out of its folder ("..", "%2e%2e", a backslash)
    // or starts with "//" (another host) is refused and shown as text.
    if (typeof value !== "string") return false;
    if (/^https?:\/\/\S+$/i.test(value)) return true;
    if (/(^|[\/\\])\.\.([\/\\]|$)|%2e|%2f|%5c|\\|^\/\//i.test(value)) return false;
    return /^(\/|\.\/)?[\w\-./]+\.(png|jpe?g)$/i.test(value);
  }

  function renderFields(fields) {
    var box = el("item-fields");
    while (box.firstChild) box.removeChild(box.firstChild);
    var names = shownFields.length ? shownFields : Object.keys(fields).filter(function (k) {
      return k !== textField;
    });
    var table = document.createElement("table");
    table.className = "table";
    var rows = 0;
    names.forEach(function (name) {
      if (!(name in fields)) return;
      var value = fields[name];
      if (isImage(value)) {
        var img = document.createElement("img");
        img.src = value;
        img.alt = name;
        img.className = "item-image";
        img.addEventListener("error", function () {
          // Not an image after all: show the value as text instead.
          var p = document.createElement("p");
          p.className = "muted";
          p.textContent = name + ": " + value;
          if (img.parentNode) img.parentNode.replaceChild(p, img);
        });
        box.appendChild(img);
        return;
      }
      var tr = document.createElement("tr");
      var th = document.createElement("th");
      th.textContent = name;
      var td = document.createElement("td");
      td.textContent = (value !== null && typeof value === "object") ? JSON.stringify(value) : String(value);
      tr.appendChild(th);
      tr.appendChild(td);
      table.appendChild(tr);
      rows += 1;
    });
    if (rows) box.appendChild(table);
  }

  function select(labels) {
    selected = labels.slice();
    buttons.forEach(function (b) {
      b.setAttribute("aria-pressed", selected.indexOf(b.dataset.label) >= 0 ? "true" : "false");
    });
  }

  function show() {
    var current = queue[0];
    var text = el("item-text");
    var meta = el("item-meta");
    var none = el("item-empty");
    select(current && current.preselect ? current.preselect : []);
    if (!current) {
      text.textContent = "";
      meta.textContent = "";
      renderFields({});
      none.hidden = false;
      none.textContent = filling ? "Loading the next item…" :
        empty === "cap_reached" ? "You reached your cap of hard items for now. Come back later." :
        "Nothing left in the queue for you. Thank you!";
      root.dataset.leaseId = "";
      return;
    }
    none.hidden = true;
    var fields = current.item.fields || {};
    var value = textField ? fields[textField] : "";
    text.textContent = value === undefined || value === null ? "" : String(value);
    text.hidden = !textField;
    meta.textContent = "item " + current.item.external_id + " · " + current.reason;
    renderFields(fields);
    root.dataset.leaseId = String(current.lease_id);
    root.dataset.itemId = String(current.item.external_id);
    shownAt = Date.now();
  }

  function progress() {
    return api("GET", base + "/queue").then(function (res) {
      if (!res.ok) return;
      var s = res.data, me = s.member || {};
      var caps = me.caps || {};
      var cap = caps.hard_allowed === false ? "hard items capped for today" :
        (caps.max_hard_per_day === null || caps.max_hard_per_day === undefined) ? "no cap" :
        "hard today " + caps.hard_today + "/" + caps.max_hard_per_day;
      var p = el("progress");
      p.textContent = "Done today: " + (me.done_today || 0) +
        " · Left in queue: " + s.remaining + " · Cap: " + cap;
      p.dataset.doneToday = String(me.done_today || 0);
      p.dataset.remaining = String(s.remaining);
    });
  }

  // ------------------------------------------------------------- the queue

  function fill() {
    if (filling) return filling;
    if (queue.length >= 2 || empty) return Promise.resolve();
    var have = queue.map(function (c) { return c.lease_id; });
    filling = api("POST", base + "/next", { have: have }).then(function (res) {
      filling = null;
      if (!res.ok) { flash(errorText(res), "bad"); return; }
      if (res.data.lease_id === null || res.data.lease_id === undefined) {
        if (res.data.empty !== "holding") empty = res.data.empty;
        if (!queue.length) show();
        return;
      }
      var known = queue.some(function (c) { return c.lease_id === res.data.lease_id; });
      if (!known) {
        res.data.key = newKey();
        queue.push(res.data);
        if (queue.length === 1) show();
      }
      if (queue.length < 2) return fill();
    }, function () {
      filling = null;
      flash("The server did not answer. Check your connection.", "bad");
    });
    return filling;
  }

  function advance() {
    queue.shift();
    show();
    fill();
    progress();
  }

  function act(fn) {
    if (busy) return;
    busy = true;
    Promise.resolve().then(fn).then(function () { busy = false; }, function () {
      busy = false;
      flash("The server did not answer. Check your connection.", "bad");
    });
  }

  function dropIfGone(res) {
    // An expired or already-closed lease: the item is gone from this page.
    if (res.status === 409 || res.status === 404) { advance(); }
  }

  function submit() {
    var current = queue[0];
    if (!current) return;
    if (!selected.length) { flash("Pick a label first (its key is on the button).", "warn"); return; }
    var label = multi ? selected.slice() : selected[0];
    var spent = Math.max(0, Date.now() - shownAt);
    act(function () {
      return api("POST", "/ui/api/leases/" + current.lease_id + "/annotation", {
        label: label, time_spent_ms: spent, idempotency_key: current.key
      }).then(function (res) {
        if (!res.ok) { flash(errorText(res), "bad"); dropIfGone(res); return; }
        var gold = res.data.gold;
        if (gold) {
          flash((gold.correct ? "Correct. " : "Not quite. ") +
            "The reference answer was " + labelText(gold.reference) + ".",
            gold.correct ? "ok" : "warn");
        } else {
          flash("Saved: " + labelText(res.data.label) + ".", "ok");
        }
        advance();
      });
    });
  }

  function skip() {
    var current = queue[0];
    if (!current) return;
    act(function () {
      return api("POST", "/ui/api/leases/" + current.lease_id + "/skip", {}).then(function (res) {
        if (!res.ok) { flash(errorText(res), "bad"); dropIfGone(res); return; }
        flash("Skipped; it goes to someone else.", "");
        advance();
      });
    });
  }

  function openFlag() {
    if (!queue[0]) return;
    el("flag-form").hidden = false;
    el("flag-kind").focus();
  }

  function closeFlag() {
    el("flag-form").hidden = true;
    el("flag-note").value = "";
    if (document.activeElement) document.activeElement.blur();
  }

  function sendFlag() {
    var current = queue[0];
    if (!current) { closeFlag(); return; }
    var body = { flag: el("flag-kind").value, note: el("flag-note").value };
    act(function () {
      return api("POST", "/ui/api/leases/" + current.lease_id + "/flag", body).then(function (res) {
        if (!res.ok) { flash(errorText(res), "bad"); dropIfGone(res); return; }
        closeFlag();
        flash("Flagged for review.", "");
        advance();
      });
    });
  }

  function undo() {
    act(function () {
      return api("POST", base + "/undo", {}).then(function (res) {
        if (!res.ok) { flash(errorText(res), "warn"); return; }
        var claim = res.data;
        claim.key = newKey();
        claim.preselect = Array.isArray(claim.label) ? claim.label : [claim.label];
        queue = queue.filter(function (c) { return c.lease_id !== claim.lease_id; });
        queue.unshift(claim);
        empty = null;
        show();
        flash("Undone: your answer (" + labelText(claim.label) + ") was taken back.", "");
        progress();
      });
    });
  }

  function pick(label) {
    if (!queue[0]) return;
    if (multi) {
      var i = selected.indexOf(label);
      var next = selected.slice();
      if (i >= 0) next.splice(i, 1); else next.push(label);
      select(next);
    } else {
      select([label]);
    }
  }

  function toggle(id) {
    var box = el(id);
    var open = box.hidden;
    el("shortcuts").hidden = true;
    el("guideline").hidden = true;
    box.hidden = !open;
  }

  // ------------------------------------------------------------- wiring

  buttons.forEach(function (b) {
    b.addEventListener("click", function () { pick(b.dataset.label); });
  });
  el("submit").addEventListener("click", submit);
  el("skip").addEventListener("click", skip);
  el("flag").addEventListener("click", openFlag);
  el("undo").addEventListener("click", undo);
  el("show-guideline").addEventListener("click", function () { toggle("guideline"); });
  el("show-shortcuts").addEventListener("click", function () { toggle("shortcuts"); });
  el("flag-cancel").addEventListener("click", closeFlag);
  el("flag-form").addEventListener("submit", function (e) { e.preventDefault(); sendFlag(); });
  ["shortcuts", "guideline"].forEach(function (id) {
    el(id).addEventListener("click", function (e) { if (e.target === el(id)) el(id).hidden = true; });
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var tag = (e.target && e.target.tagName) || "";
    var typing = tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
    if (e.key === "Escape") {
      el("shortcuts").hidden = true;
      el("guideline").hidden = true;
      if (!el("flag-form").hidden) closeFlag();
      return;
    }
    if (typing) return;
    if (e.key === "?") { e.preventDefault(); toggle("shortcuts"); return; }
    if (e.key === "g") { e.preventDefault(); toggle("guideline"); return; }
    if (!el("shortcuts").hidden || !el("guideline").hidden) return;
    if (e.key === "Enter") {
      if (tag === "BUTTON" && e.target.id !== "submit" && !e.target.classList.contains("label-button")) return;
      e.preventDefault();
      submit();
      return;
    }
    if (e.key === "s") { e.preventDefault(); skip(); return; }
    if (e.key === "f") { e.preventDefault(); openFlag(); return; }
    if (e.key === "u") { e.preventDefault(); undo(); return; }
    var key = e.key.length === 1 ? e.key.toLowerCase() : "";
    if (!key) return;
    var button = document.querySelector('.label-button[data-key="' + (/^[0-9a-z]$/.test(key) ? key : "") + '"]');
    if (button) { e.preventDefault(); pick(button.dataset.label); }
  });

  // Keep the held leases alive while the member works (the page may sit open).
  function renew() {
    var soon = Date.now() + 4 * 60 * 1000;
    queue.forEach(function (claim) {
      if (!claim.expires_at || Date.parse(claim.expires_at) > soon) return;
      api("POST", "/ui/api/leases/" + claim.lease_id + "/renew", {}).then(function (res) {
        if (res.ok) claim.expires_at = res.data.expires_at;
      });
    });
  }
  window.setInterval(renew, 60 * 1000);

  show();
  fill().then(progress);
})();
