// The studio, enhanced: saves go through fetch and the preview refreshes in place.
// Every form still works without this file (a plain POST and a redirect).
"use strict";
(function () {
  const preview = document.getElementById("preview");

  function refreshPreview(sha) {
    if (!preview) return;
    preview.src = preview.dataset.src + "?v=" + encodeURIComponent(sha);
  }

  function setSha(sha) {
    for (const input of document.querySelectorAll('input[name="sha"]')) input.value = sha;
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
    const box = card.querySelector('[data-role="tags"]');
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

  // Tag completion for every word of the field, not only the first: the datalist offers
  // what is typed so far followed by each configured tag not yet there.
  const options = document.getElementById("tag-options");
  const configured = options ? [...options.options].map((o) => o.value) : [];
  for (const field of document.querySelectorAll('input[name="tags"]')) {
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

  for (const form of document.querySelectorAll("form.js-save")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const card = form.closest("article.entry");
      const msg = form.querySelector('[data-role="msg"]');
      const button = form.querySelector("button");
      button.disabled = true;
      msg.className = "refused";
      msg.textContent = "saving…";
      try {
        const resp = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: {"X-Requested-With": "studio", "Accept": "application/json"},
          credentials: "same-origin",
        });
        if (!(resp.headers.get("Content-Type") || "").startsWith("application/json")) {
          msg.textContent = "not saved (" + resp.status + "): reload the page"
            + (resp.status === 403 ? " or open the studio's login link again" : "");
          return;
        }
        const data = await resp.json();
        if (data.conflict) {
          window.location.assign(data.conflict);
          return;
        }
        if (!resp.ok) {
          msg.textContent = data.error || ("not saved (" + resp.status + ")");
          return;
        }
        setSha(data.sha);
        showLint(data.lint || {});
        if (card && typeof data.tags === "string") showTags(card, data.tags);
        showList("status", data.status);
        const next = document.getElementById("next-step");
        if (next && data.next_step) next.textContent = "next: " + data.next_step;
        showList("changes", data.changes);
        msg.className = "refused ok";
        msg.textContent = data.message;
        refreshPreview(data.sha);
      } catch (err) {
        msg.textContent = "not saved: " + err;
      } finally {
        button.disabled = false;
      }
    });
  }

  // Preview tabs switch the frame without leaving the page.
  for (const tab of document.querySelectorAll(".tabs a.tab")) {
    tab.addEventListener("click", (event) => {
      if (!preview) return;
      event.preventDefault();
      for (const t of document.querySelectorAll(".tabs a.tab")) t.classList.remove("on");
      tab.classList.add("on");
      preview.dataset.src = tab.dataset.src;
      const sha = document.querySelector('input[name="sha"]');
      refreshPreview(sha ? sha.value : "");
    });
  }
})();
