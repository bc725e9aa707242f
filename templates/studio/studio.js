// The studio, enhanced: every change goes through fetch and the page is updated in place
// (it keeps its place; the message shows beside what was clicked); commentary saves itself
// as you type; triage by keyboard. Every form still works without this file (a plain POST
// and a redirect).
"use strict";
(function () {
  const AUTOSAVE_MS = 800;
  const JSON_HEADERS = {"X-Requested-With": "studio", "Accept": "application/json"};

  // --- small helpers ----------------------------------------------------------------------

  async function post(form, submitter) {
    const body = submitter ? new FormData(form, submitter) : new FormData(form);
    const resp = await fetch(form.action, {
      method: "POST", body, headers: JSON_HEADERS, credentials: "same-origin",
    });
    const type = resp.headers.get("Content-Type") || "";
    if (!type.startsWith("application/json")) {
      return {resp, data: {error: "not done (" + resp.status + "): reload the page"
        + (resp.status === 403 ? " or open the studio's login link again" : "")}};
    }
    return {resp, data: await resp.json()};
  }

  function say(box, text, level) {
    if (!box) return;
    box.replaceChildren();
    const p = document.createElement("p");
    p.className = "msg msg-" + (level || "ok");
    p.setAttribute("role", "status");
    p.textContent = text;
    box.appendChild(p);
  }

  function conflictLink(box, url) {
    say(box, "not saved: this entry was changed on disk meanwhile. ", "error");
    const a = document.createElement("a");
    a.href = url;
    a.textContent = "Compare and copy your text";
    box.firstChild.appendChild(a);
  }

  function showList(id, lines) {
    const list = document.getElementById(id);
    if (!list || !Array.isArray(lines)) return;
    list.replaceChildren();
    for (const line of lines) {
      const li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    }
  }

  function showStatus(data) {
    showList("status", data.status);
    const next = document.getElementById("next-step");
    if (next && data.next_step) next.textContent = "next: " + data.next_step;
    if (data.changes) showList("changes", data.changes);
  }

  function setSha(sha) {
    if (!sha) return;
    for (const input of document.querySelectorAll('input[name="sha"]')) input.value = sha;
    refreshPreview(sha);
  }

  // --- the preview: variant and part chosen apart, so "plain text" shows the variant chosen

  const preview = document.getElementById("preview");
  const view = preview ? {variant: preview.dataset.variant, part: preview.dataset.part} : null;

  function refreshPreview(sha) {
    if (!preview) return;
    preview.src = "/preview/" + view.variant + "." + view.part + "?v=" + encodeURIComponent(sha);
  }

  function currentSha() {
    const input = document.querySelector('input[name="sha"]');
    return input ? input.value : "";
  }

  for (const tab of document.querySelectorAll(".tabs a.tab")) {
    tab.addEventListener("click", (event) => {
      if (!preview) return;
      event.preventDefault();
      if (tab.dataset.variant) view.variant = tab.dataset.variant;
      view.part = tab.dataset.part;
      for (const t of document.querySelectorAll(".tabs a.tab")) {
        t.classList.toggle("on", t.dataset.part === view.part
          && (view.part === "txt" || t.dataset.variant === view.variant));
      }
      const text = document.getElementById("text-tab");
      if (text) text.href = "/?variant=" + view.variant + "&part=txt";
      refreshPreview(currentSha());
    });
  }

  // --- commentary: autosave (debounced), never lose a word ----------------------------------

  const pending = new Map(); // form -> timer id
  const dirty = new Set(); // forms with text not yet saved
  const inflight = new Set(); // save promises

  function entryOf(form) { return form.closest("article.entry"); }

  function setEntryId(card, key, fp) {
    if (!card) return;
    card.dataset.fp = fp;
    for (const input of card.querySelectorAll('input[name="fp"]')) input.value = fp;
    for (const input of card.querySelectorAll('input[name="key"]')) input.value = key;
  }

  function showLint(lint) {
    for (const card of document.querySelectorAll("article.entry")) {
      const list = card.querySelector('[data-role="lint"]');
      if (!list) continue;
      list.replaceChildren();
      for (const f of lint[card.dataset.index] || []) {
        const li = document.createElement("li");
        li.className = "lint-" + f.level;
        li.textContent = f.level + ": " + f.message;
        list.appendChild(li);
      }
    }
  }

  function showTags(card, text) {
    const box = card && card.querySelector('[data-role="tags"]');
    if (!box) return;
    box.replaceChildren();
    const words = text.split(/\s+/).filter(Boolean);
    for (const word of words) {
      const span = document.createElement("span");
      span.className = "tag";
      span.textContent = word;
      box.appendChild(span);
    }
    if (!words.length) {
      const none = document.createElement("span");
      none.className = "none";
      none.textContent = "no tags";
      box.appendChild(none);
    }
  }

  async function save(form) {
    clearTimeout(pending.get(form));
    pending.delete(form);
    const card = entryOf(form);
    const msg = form.querySelector('[data-role="msg"]');
    msg.className = "refused";
    msg.textContent = "saving…";
    const sent = [...form.querySelectorAll("textarea, input[name=tags]")].map((f) => f.value);
    try {
      const {resp, data} = await post(form);
      if (data.conflict) { conflictLink(msg, data.conflict); return; }
      if (!resp.ok) { msg.textContent = data.error || ("not saved (" + resp.status + ")"); return; }
      const now = [...form.querySelectorAll("textarea, input[name=tags]")].map((f) => f.value);
      if (now.join("\0") === sent.join("\0")) { // typed on meanwhile: still dirty
        dirty.delete(form);
        forget(card);
      }
      setEntryId(card, data.key, data.fp);
      setSha(data.sha);
      showLint(data.lint || {});
      showTags(card, data.tags || "");
      showStatus(data);
      msg.className = "refused ok";
      msg.textContent = data.message;
    } catch (err) {
      msg.textContent = "not saved: " + err;
    }
  }

  function tracked(form) {
    const run = save(form);
    inflight.add(run);
    run.finally(() => inflight.delete(run));
    return run;
  }

  async function flush() {
    for (const form of [...pending.keys()]) tracked(form);
    await Promise.all([...inflight]);
  }

  // Unsaved text also waits in this tab's sessionStorage until the server has it: a reload
  // (or a crash) before the save lands brings it back into its box, and saves it then.
  function stash(form) {
    const card = entryOf(form);
    if (!card) return;
    const fields = {};
    for (const f of form.querySelectorAll("textarea, input[name=tags]")) fields[f.name] = f.value;
    try {
      sessionStorage.setItem("studio:" + card.dataset.key,
        JSON.stringify({fp: card.dataset.fp, fields}));
    } catch (err) { /* storage full or off: the autosave still runs */ }
  }

  function forget(card) {
    if (card) try { sessionStorage.removeItem("studio:" + card.dataset.key); } catch (err) { /* off */ }
  }

  function restore(form) {
    const card = entryOf(form);
    let kept = null;
    try { kept = JSON.parse(sessionStorage.getItem("studio:" + (card && card.dataset.key)) || "null"); } catch (err) { kept = null; }
    if (!kept) return;
    const boxes = [...form.querySelectorAll("textarea, input[name=tags]")];
    const same = boxes.every((f) => f.value === kept.fields[f.name]);
    const msg = form.querySelector('[data-role="msg"]');
    if (same) { forget(card); return; }
    if (kept.fp !== card.dataset.fp) { // the entry changed since: show, do not overwrite
      msg.className = "refused";
      msg.textContent = "text typed before the page was left, not saved (the entry changed "
        + "meanwhile): " + Object.values(kept.fields).join(" / ");
      forget(card);
      return;
    }
    for (const f of boxes) f.value = kept.fields[f.name];
    dirty.add(form);
    msg.className = "refused";
    msg.textContent = "restored what was typed before the page was left; saving…";
    tracked(form);
  }

  function bindEditors(root) {
    for (const form of root.querySelectorAll("form.js-save")) {
      restore(form);
      form.addEventListener("submit", (event) => { event.preventDefault(); tracked(form); });
      for (const field of form.querySelectorAll("textarea, input[name=tags]")) {
        field.addEventListener("input", () => {
          dirty.add(form);
          stash(form);
          clearTimeout(pending.get(form));
          pending.set(form, setTimeout(() => tracked(form), AUTOSAVE_MS));
          const msg = form.querySelector('[data-role="msg"]');
          msg.className = "refused";
          msg.textContent = "editing…";
        });
      }
    }
    bindTagCompletion(root);
  }

  window.addEventListener("beforeunload", (event) => {
    if (dirty.size || inflight.size) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  // Leaving anyway (a reload, a closed tab): what was typed goes out with the page.
  window.addEventListener("pagehide", () => {
    for (const form of dirty) navigator.sendBeacon(form.action, new FormData(form));
  });

  // Tag completion for every word of the field: what is typed so far, then each tag not there.
  const options = document.getElementById("tag-options");
  const configured = options ? [...options.options].map((o) => o.value) : [];
  function bindTagCompletion(root) {
    if (!options) return;
    for (const field of root.querySelectorAll('input[name="tags"]')) {
      field.addEventListener("input", () => {
        const value = field.value;
        const cut = value.lastIndexOf(" ") + 1;
        const head = value.slice(0, cut);
        const have = new Set(head.split(/\s+/).filter(Boolean).map((t) => t.toLowerCase()));
        options.replaceChildren();
        for (const tag of configured) {
          if (have.has(tag.toLowerCase())) continue;
          const option = document.createElement("option");
          option.value = head + tag;
          options.appendChild(option);
        }
      });
    }
  }

  // --- entries: move, remove, undo, merge note, in place -----------------------------------

  function replaceEntries(html) {
    const old = document.getElementById("entries");
    if (!old || !html) return null;
    const holder = document.createElement("div");
    holder.innerHTML = html; // the server's own template, escaped by Jinja
    const fresh = holder.querySelector("#entries");
    const y = window.scrollY;
    old.replaceWith(fresh);
    window.scrollTo(0, y); // the page keeps its place
    bindEntries(fresh);
    return fresh;
  }

  async function entryAction(form, submitter) {
    await flush(); // a word typed elsewhere is saved before the list changes
    const card = form.closest("article.entry");
    const index = card ? Number(card.dataset.index) : -1;
    const box = card ? card.querySelector('[data-role="placed"]')
      : form.closest("#entries").querySelector('[data-role="msg"]');
    if (submitter) submitter.disabled = true;
    try {
      const {resp, data} = await post(form, submitter);
      if (data.conflict) { conflictLink(box, data.conflict); return; }
      if (!resp.ok) { say(box, data.error || ("not done (" + resp.status + ")"), "error"); return; }
      const fresh = replaceEntries(data.html);
      setSha(data.sha);
      if (!fresh) return;
      let where = null;
      if (/^e\d+$/.test(data.where || "")) {
        const target = document.getElementById(data.where);
        where = target && target.querySelector('[data-role="placed"]');
      } else if (index >= 0) { // removed: the message goes where the entry was
        const next = fresh.querySelector('article.entry[data-index="' + index + '"]');
        where = document.createElement("div");
        where.className = "placed";
        if (next) next.before(where); else fresh.appendChild(where);
      }
      say(where || fresh.querySelector('[data-role="msg"]'), data.message, "ok");
      const count = document.getElementById("entry-count");
      if (count) count.textContent = fresh.querySelectorAll("article.entry").length;
    } catch (err) {
      say(box, "not done: " + err, "error");
    } finally {
      if (submitter) submitter.disabled = false;
    }
  }

  let dragged = null;
  function bindEntries(root) {
    bindEditors(root);
    const forms = root.querySelectorAll(".entry-tools form, #undo-bar form, #bulk-form");
    for (const form of forms) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        entryAction(form, event.submitter);
      });
    }
    for (const card of root.querySelectorAll("article.entry")) {
      const handle = card.querySelector(".handle");
      if (handle) {
        handle.addEventListener("dragstart", (event) => {
          dragged = card;
          // Not text/plain: a textarea would take the drop as typed text.
          event.dataTransfer.setData("application/x-digest-entry", card.dataset.key);
          event.dataTransfer.effectAllowed = "move";
          card.classList.add("dragging");
        });
        handle.addEventListener("dragend", () => card.classList.remove("dragging"));
      }
      card.addEventListener("dragover", (event) => {
        if (dragged && dragged !== card) event.preventDefault();
      });
      card.addEventListener("drop", (event) => {
        event.preventDefault();
        if (!dragged || dragged === card) return;
        const form = dragged.querySelector("form.move-to");
        form.querySelector('input[name="to"]').value = Number(card.dataset.index) + 1;
        dragged = null;
        entryAction(form, null);
      });
    }
  }

  const entries = document.getElementById("entries");
  if (entries) bindEntries(entries);

  // --- build, test copies, send: the outcome beside the button ----------------------------

  for (const form of document.querySelectorAll("form.js-action")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await flush();
      const box = form.closest("section, form").querySelector('[data-role="msg"]')
        || document.getElementById("actions-msg");
      const button = event.submitter;
      if (button) button.disabled = true;
      say(box, "working…", "info");
      try {
        const {data} = await post(form, button);
        box.replaceChildren();
        for (const line of data.lines || []) {
          const p = document.createElement("p");
          p.className = "msg msg-info";
          p.textContent = line;
          box.appendChild(p);
        }
        const p = document.createElement("p");
        p.className = "msg msg-" + (data.ok ? "ok" : "error");
        p.setAttribute("role", "status");
        p.textContent = data.message || data.error;
        box.appendChild(p);
        showStatus(data);
        refreshPreview(currentSha());
      } catch (err) {
        say(box, "not done: " + err, "error");
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  // --- triage: the candidates, by keyboard and mouse -------------------------------------

  const list = document.getElementById("candidates");
  if (list) {
    const cards = () => [...list.querySelectorAll("article.candidate")];
    let cursor = -1;

    function focusCard(n) {
      const all = cards();
      if (!all.length) return;
      cursor = Math.max(0, Math.min(all.length - 1, n));
      for (const c of all) c.classList.remove("cursor");
      const card = all[cursor];
      card.classList.add("cursor");
      card.focus({preventScroll: true});
      card.scrollIntoView({block: "nearest"});
    }

    function mark(id, state, message) {
      const card = document.getElementById("c-" + id);
      if (!card) return;
      card.dataset.state = state;
      const label = card.querySelector('[data-role="state"]');
      if (label) label.textContent = state;
      if (message) say(card.querySelector('[data-role="msg"]'), message, "ok");
    }

    async function triage(form, submitter) {
      const card = form.closest("article.candidate");
      const box = card ? card.querySelector('[data-role="msg"]') : null;
      try {
        const {resp, data} = await post(form, submitter);
        if (!resp.ok || data.conflict) {
          say(box || form, data.error || "not done (" + resp.status + ")", "error");
          return false;
        }
        for (const id of data.ids || []) mark(id, data.state, card ? data.message : "");
        if (!card) {
          for (const box2 of form.querySelectorAll('[data-role="msg"]')) say(box2, data.message);
          for (const check of list.querySelectorAll('input[name="ids"]:checked')) check.checked = false;
        }
        return true;
      } catch (err) {
        say(box, "not done: " + err, "error");
        return false;
      }
    }

    for (const form of list.querySelectorAll("form.js-triage")) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const card = form.closest("article.candidate");
        focusCard(cards().indexOf(card));
        if (await triage(form, event.submitter)) focusCard(cursor + 1);
      });
    }
    const bulk = document.getElementById("bulk-triage");
    if (bulk) {
      const box = document.createElement("span");
      box.dataset.role = "msg";
      bulk.appendChild(box);
      bulk.addEventListener("submit", (event) => {
        event.preventDefault();
        triage(bulk, event.submitter);
      });
    }

    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const tag = (event.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select") return;
      const card = cards()[cursor];
      switch (event.key) {
        case "j": focusCard(cursor + 1); break;
        case "k": focusCard(cursor - 1); break;
        case "p": if (card) card.querySelector('form[action="/add"] button').click(); break;
        case "d": if (card) card.querySelector('form[action="/triage"] button').click(); break;
        case "o": {
          if (!card) return;
          const details = card.querySelector("details.abstract");
          if (details) details.open = !details.open;
          break;
        }
        case "x": {
          if (!card) return;
          const box = card.querySelector('input[name="ids"]');
          if (box) box.checked = !box.checked;
          break;
        }
        default: return;
      }
      event.preventDefault();
    });
  }
})();
