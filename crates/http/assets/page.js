// The hosted signing page (/p/{slug}) with JavaScript on: signs with fetch
// and shows each field's fault beside it, keeps the count live from the
// stream (polling with ETag where a proxy holds streams back), and names the
// countries in the page's language. Without it the page works as plain HTML.
(() => {
  "use strict";
  const main = document.getElementById("petition");
  if (!main) return;
  const api = main.dataset.api;
  const lang = main.dataset.lang || "en";
  const messages = JSON.parse(document.getElementById("messages").content.textContent || "{}");

  // The count.
  const countEl = main.querySelector("[data-count]");
  const goalEl = main.querySelector("[data-goal]");
  const progress = main.querySelector("[data-progress]");
  const number = new Intl.NumberFormat(lang);
  let shown = -1;
  function show(count) {
    if (typeof count.count !== "number" || count.count === shown) return;
    shown = count.count;
    countEl.textContent = number.format(count.count);
    goalEl.textContent = number.format(count.goal);
    progress.max = count.goal;
    progress.value = Math.min(count.count, count.goal);
    progress.textContent = `${count.count} / ${count.goal}`;
  }
  show({ count: Number(countEl.textContent), goal: Number(goalEl.textContent) });

  let etag = null;
  let polling = null;
  async function poll() {
    try {
      const r = await fetch(api + "count", { headers: etag ? { "If-None-Match": etag } : {} });
      if (r.status === 200) {
        etag = r.headers.get("ETag");
        show(await r.json());
      }
    } catch (_) { /* the next poll tries again */ }
  }
  function startPolling() {
    if (polling === null) {
      poll();
      polling = setInterval(poll, 10000);
    }
  }
  if ("EventSource" in window) {
    const stream = new EventSource(api + "count/stream");
    let heard = false;
    stream.addEventListener("count", (event) => {
      heard = true;
      show(JSON.parse(event.data));
    });
    // Nothing within 5 s (a proxy buffering the stream) or refused outright,
    // at first or on a reconnection (the service keeps so many streams, 503,
    // or this address so many, 429): poll instead. Otherwise the browser
    // reconnects by itself.
    setTimeout(() => { if (!heard) startPolling(); }, 5000);
    stream.addEventListener("error", () => {
      if (!heard || stream.readyState === EventSource.CLOSED) {
        stream.close();
        startPolling();
      }
    });
  } else {
    startPolling();
  }

  // Countries by name, in the page's language.
  const select = document.getElementById("country");
  if (select && typeof Intl.DisplayNames === "function") {
    const names = new Intl.DisplayNames([lang, "en"], { type: "region" });
    const options = Array.from(select.options).slice(1);
    for (const option of options) {
      try {
        const name = names.of(option.value);
        if (name && name !== option.value) option.textContent = name;
      } catch (_) { /* keep the flag and code */ }
    }
    options.sort((a, b) => a.textContent.localeCompare(b.textContent, lang));
    for (const option of options) select.appendChild(option);
  }

  // Signing.
  const form = document.getElementById("sign");
  const thanks = document.getElementById("thanks");
  if (!form) return;
  const summary = document.getElementById("problem");
  const summaryText = summary.querySelector("[data-problem]");
  const button = form.querySelector("button[type=submit]");

  function clearFaults() {
    summary.hidden = true;
    summaryText.textContent = "";
    for (const field of form.querySelectorAll(".field.invalid")) field.classList.remove("invalid");
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    for (const error of form.querySelectorAll(".error")) error.textContent = "";
  }
  function message(field, code) {
    if (field === "captcha") return messages.captcha;
    return messages[code] || messages.invalid;
  }
  function tell(text) {
    summaryText.textContent = text;
    summary.hidden = false;
    summary.focus();
  }
  function markFaults(errors) {
    let first = null;
    const loose = [];
    for (const { field, code } of errors) {
      const input = form.elements.namedItem(field);
      const error = document.getElementById(`${field}-error`);
      if (input && error && typeof input.setAttribute === "function") {
        input.setAttribute("aria-invalid", "true");
        input.closest(".field")?.classList.add("invalid");
        error.textContent = message(field, code);
        first = first || input;
      } else {
        loose.push(message(field, code));
      }
    }
    if (loose.length || !first) tell(loose.join(" ") || messages.invalid);
    if (first) first.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFaults();
    const label = button.textContent;
    button.disabled = true;
    button.textContent = messages.sending;
    const body = new URLSearchParams(new FormData(form));
    body.delete("landing");
    try {
      const r = await fetch(form.action, {
        method: "POST",
        body,
        headers: { Accept: "application/json" },
      });
      if (r.status === 202) {
        const answer = await r.json();
        form.hidden = true;
        thanks.querySelector("[data-receipt]").textContent = answer.receipt;
        thanks.hidden = false;
        thanks.setAttribute("tabindex", "-1");
        thanks.focus();
        return;
      }
      const problem = await r.json().catch(() => ({}));
      if (Array.isArray(problem.errors) && problem.errors.length) {
        markFaults(problem.errors);
      } else if (r.status === 429) {
        tell(messages.too_many);
      } else if (r.status === 503) {
        tell(messages.unavailable);
      } else if (String(problem.type || "").endsWith("petition-not-open")) {
        tell(messages.closed);
      } else if (String(problem.type || "").includes("captcha")) {
        tell(messages.captcha);
      } else {
        tell(messages.refused);
      }
      if (window.hcaptcha) window.hcaptcha.reset();
    } catch (_) {
      tell(messages.unavailable);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
})();
