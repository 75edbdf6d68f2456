// The embeddable widget: one script a campaign's site includes,
//
//   <script src="https://SERVICE/widget.js" data-petition="SLUG" async></script>
//
// renders the petition's count, its goal bar and a signing form in a shadow
// root where the script stands (or in the element `data-target` names), so
// that no style leaks either way, and signs across origins under the
// petition's `allowed_origins`. No dependencies. Optional: `data-locale`
// (else the page's <html lang>, else the browser's).
(() => {
  "use strict";
  const COUNTRIES = /*COUNTRIES*/[];
  const WORDS = /*WORDS*/{};
  const scripts = document.currentScript
    ? [document.currentScript]
    : Array.from(document.querySelectorAll("script[data-petition]")).filter((s) => /widget\.js/.test(s.src) && !s.dataset.rendered);
  for (const script of scripts) {
    if (script.dataset.rendered) continue;
    script.dataset.rendered = "yes";
    render(script);
  }

  // A host page's tag as the service and Intl read it: `pt_BR` is `pt-BR`,
  // extensions (`-u-nu-arab`) go, and what is no language tag is English.
  function locale(tag) {
    try {
      return new Intl.Locale(String(tag || "en").replace(/_/g, "-")).baseName;
    } catch (_) {
      return "en";
    }
  }

  function render(script) {
    const slug = script.dataset.petition;
    if (!slug) return;
    const api = new URL(`v1/petitions/${encodeURIComponent(slug)}/`, script.src);
    const lang = locale(script.dataset.locale || document.documentElement.lang || navigator.language);
    const words = WORDS[lang.split("-")[0]] || WORDS.en;
    const host = document.createElement("div");
    host.className = "undersigned-widget";
    const target = script.dataset.target && document.querySelector(script.dataset.target);
    if (target) target.appendChild(host);
    else script.after(host);
    const root = host.attachShadow({ mode: "open" });
    root.innerHTML = `<style>
:host { all: initial; display: block; font-family: system-ui, sans-serif; color: #1b1b1b; line-height: 1.45; }
.box { border: 1px solid #c8c8c8; border-radius: 6px; padding: 1rem; max-width: 28rem; background: #fff; }
h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
.count { font-size: 1.4rem; font-weight: 700; }
progress { width: 100%; height: .8rem; accent-color: #1a4d8f; }
label { display: block; font-weight: 600; margin: .6rem 0 .2rem; }
input[type=text], input[type=email], select { box-sizing: border-box; width: 100%; font: inherit; padding: .45rem .5rem; border: 2px solid #6b6b6b; border-radius: 4px; background: #fff; color: #1b1b1b; }
label.consent { display: flex; gap: .4rem; font-weight: 400; }
button, a.page { display: inline-block; font: inherit; font-weight: 600; text-decoration: none; margin-top: .8rem; padding: .55rem 1.3rem; border: 0; border-radius: 4px; background: #1a4d8f; color: #fff; cursor: pointer; }
:focus { outline: 3px solid #f2b600; outline-offset: 2px; }
.error { color: #a4161a; margin: .2rem 0 0; }
.error:empty, [hidden] { display: none; }
.problem { color: #a4161a; font-weight: 600; }
.thanks { font-weight: 600; color: #1e7b34; }
</style>
<div class="box" part="box">
<h2 part="title"></h2>
<p><span class="count" data-count>0</span> <span data-signatures></span></p>
<progress data-progress max="1" value="0"></progress>
<form novalidate>
<label for="w-name"></label><input id="w-name" name="full_name" type="text" autocomplete="name" required aria-describedby="w-name-error"><p class="error" id="w-name-error"></p>
<label for="w-email"></label><input id="w-email" name="email" type="email" autocomplete="email" required aria-describedby="w-email-error"><p class="error" id="w-email-error"></p>
<label for="w-country"></label><select id="w-country" name="country" required autocomplete="country" aria-describedby="w-country-error"></select><p class="error" id="w-country-error"></p>
<label class="consent"><input type="checkbox" name="consent_updates"> <span data-consent></span></label>
<p class="problem" role="alert" data-problem hidden></p>
<button type="submit"></button>
</form>
<p class="thanks" role="status" data-thanks hidden></p>
</div>`;
    const $ = (selector) => root.querySelector(selector);
    const number = new Intl.NumberFormat(lang);
    $("[data-signatures]").textContent = words.signatures;
    $("label[for=w-name]").textContent = words.full_name;
    $("label[for=w-email]").textContent = words.email;
    $("label[for=w-country]").textContent = words.country;
    $("[data-consent]").textContent = words.consent;
    $("button").textContent = words.submit;
    const select = $("#w-country");
    const names = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames([lang, "en"], { type: "region" }) : null;
    const named = COUNTRIES.map((code) => {
      let name = code;
      try { name = (names && names.of(code)) || code; } catch (_) { /* the code, then */ }
      return [code, name];
    }).sort((a, b) => a[1].localeCompare(b[1], lang));
    select.append(new Option(words.choose, ""));
    for (const [code, name] of named) select.append(new Option(name, code));

    function show(count) {
      $("[data-count]").textContent = number.format(count.count);
      const bar = $("[data-progress]");
      bar.max = count.goal;
      bar.value = Math.min(count.count, count.goal);
      bar.setAttribute("aria-label", `${count.count} / ${count.goal}`);
    }
    // In the query, not in Accept-Language: that header would need a
    // preflight across origins, and the answer is cached by its address.
    const petition = new URL(`v1/petitions/${encodeURIComponent(slug)}`, script.src);
    // Only a tag the service reads (a language of two or three letters): any
    // other would be refused, and the petition shown in its own language.
    const asked = /^[a-z]{2,3}(-|$)/.test(lang) ? lang : null;
    if (asked) petition.searchParams.set("locale", asked);
    fetch(petition)
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((p) => {
        $("h2").textContent = p.title;
        show(p);
        // A postal code, a city or a captcha (asked for where the service
        // checks one, which gives its sitekey): the petition's page asks.
        if ((p.required_fields || []).length || p.captcha_sitekey) {
          const page = new URL(`p/${encodeURIComponent(slug)}`, script.src);
          if (asked) page.searchParams.set("locale", asked);
          const link = document.createElement("a");
          link.href = page.href;
          link.target = "_blank";
          link.rel = "noopener";
          link.className = "page";
          link.textContent = words.sign_on_page;
          $("form").replaceWith(link);
        }
      })
      .catch(() => { $("h2").textContent = words.unavailable; });
    let polling = null;
    // The browser's cache revalidates with the count's ETag by itself (an
    // If-None-Match of the script's own would need a preflight across origins).
    const poll = () => fetch(new URL("count", api), { cache: "no-cache" })
      .then((r) => (r.ok ? r.json().then(show) : null))
      .catch(() => {});
    if ("EventSource" in window) {
      const stream = new EventSource(new URL("count/stream", api));
      let heard = false;
      stream.addEventListener("count", (event) => { heard = true; show(JSON.parse(event.data)); });
      stream.addEventListener("error", () => {
        // Refused at first or on a reconnection (503, 429): poll instead.
        if ((!heard || stream.readyState === EventSource.CLOSED) && polling === null) {
          stream.close();
          polling = setInterval(poll, 10000);
        }
      });
    } else {
      polling = setInterval(poll, 10000);
    }

    const form = $("form");
    const problem = $("[data-problem]");
    const fieldIds = { full_name: "w-name", email: "w-email", country: "w-country" };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.hidden = true;
      for (const error of root.querySelectorAll(".error")) error.textContent = "";
      for (const input of root.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
      const button = $("button");
      button.disabled = true;
      const data = Object.fromEntries(new FormData(form));
      data.consent_updates = Boolean(data.consent_updates);
      data.locale = lang;
      try {
        const r = await fetch(new URL("signatures", api), {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(data),
        });
        if (r.status === 202) {
          form.hidden = true;
          const thanks = $("[data-thanks]");
          thanks.textContent = words.thanks_heading;
          thanks.hidden = false;
          return;
        }
        const answer = await r.json().catch(() => ({}));
        let first = null;
        for (const { field, code } of answer.errors || []) {
          const id = fieldIds[field];
          if (!id) continue;
          const input = root.getElementById(id);
          input.setAttribute("aria-invalid", "true");
          root.getElementById(`${id}-error`).textContent = words.errors[code] || words.errors.invalid;
          first = first || input;
        }
        if (first) first.focus();
        else {
          problem.textContent = r.status === 429 ? words.too_many : r.status === 503 ? words.unavailable : words.refused;
          problem.hidden = false;
        }
      } catch (_) {
        // A browser refused the answer (an origin not on the petition's list) or the network failed.
        problem.textContent = words.refused;
        problem.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }
})();
