// The calibration labeling page: one session item at a time, keyboard first,
// blind (the server sends only the item). Item data is written with textContent.
(function () {
  "use strict";
  var root = document.getElementById("calibrate");
  if (!root) return;
  var enc = encodeURIComponent;
  var multi = root.dataset.multiLabel === "true";
  var textField = root.dataset.textField || "";
  var shownFields = [];
  try { shownFields = JSON.parse(root.dataset.fields || "[]"); } catch (e) { shownFields = []; }
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var base = "/ui/api/projects/" + enc(root.dataset.project) + "/calibration/" + enc(root.dataset.session);
  var el = function (id) { return document.getElementById(id); };
  var buttons = Array.prototype.slice.call(document.querySelectorAll(".label-button"));
  var current = null, selected = [], busy = false, shownAt = Date.now();

  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin",
                 headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } };
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

  function flash(text, kind) { var f = el("flash"); f.textContent = text || ""; f.className = kind || ""; }

  function select(labels) {
    selected = labels.slice();
    buttons.forEach(function (b) {
      b.setAttribute("aria-pressed", selected.indexOf(b.dataset.label) >= 0 ? "true" : "false");
    });
  }

  function pick(label) {
    if (!multi) { select([label]); return; }
    var i = selected.indexOf(label);
    var next = selected.slice();
    if (i >= 0) next.splice(i, 1); else next.push(label);
    select(next);
  }

  function renderFields(fields) {
    var box = el("item-fields");
    while (box.firstChild) box.removeChild(box.firstChild);
    var names = shownFields.length ? shownFields : Object.keys(fields).filter(function (k) { return k !== textField; });
    var table = document.createElement("table");
    table.className = "table";
    names.forEach(function (name) {
      if (!(name in fields)) return;
      var tr = document.createElement("tr");
      var th = document.createElement("th"); th.textContent = name;
      var td = document.createElement("td");
      var value = fields[name];
      td.textContent = (value !== null && typeof value === "object") ? JSON.stringify(value) : String(value);
      tr.appendChild(th); tr.appendChild(td); table.appendChild(tr);
    });
    if (table.rows.length) box.appendChild(table);
  }

  function show(data) {
    if (data.done) {
      current = null;
      root.dataset.itemId = "";
      el("item-text").textContent = "";
      renderFields({});
      var empty = el("item-empty");
      empty.hidden = false;
      empty.textContent = "Done: you answered every item of this session. Thank you.";
      el("progress").textContent = "All done";
      return;
    }
    current = data;
    root.dataset.itemId = String(data.item.id);
    el("item-empty").hidden = true;
    el("item-text").textContent = textField && data.item.fields[textField] != null ? String(data.item.fields[textField]) : "";
    renderFields(data.item.fields);
    el("progress").textContent = "Item " + (data.answered + 1) + " of " + data.total;
    select([]);
    shownAt = Date.now();
  }

  function load() {
    return api("GET", base + "/next").then(function (res) {
      if (!res.ok) { flash(res.data.error ? res.data.error.message : "Request failed.", "error"); return; }
      show(res.data);
    });
  }

  function submit() {
    if (busy || !current) return;
    if (!multi && selected.length !== 1) { flash("Pick a label first.", "error"); return; }
    busy = true;
    var body = { item_id: current.item.id, label: multi ? selected : selected[0],
                 time_spent_ms: Math.min(Date.now() - shownAt, 86400000) };
    api("POST", base + "/answers", body).then(function (res) {
      if (!res.ok) { flash(res.data.error ? res.data.error.message : "Request failed.", "error"); return null; }
      flash("Saved.", "ok");
      return load();
    }).then(function () { busy = false; }, function () { busy = false; flash("Network error; try again.", "error"); });
  }

  buttons.forEach(function (b) { b.addEventListener("click", function () { pick(b.dataset.label); }); });
  el("submit").addEventListener("click", submit);
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    if (event.key === "Enter") { event.preventDefault(); submit(); return; }
    var key = event.key.toLowerCase();
    buttons.forEach(function (b) { if (b.dataset.key === key) { event.preventDefault(); pick(b.dataset.label); } });
  });
  load();
})();
