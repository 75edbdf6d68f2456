// Drives the hosted signing page (/p/{slug}) in headless Chromium: it signs
// without JavaScript and with it, shows field errors inline, is right to
// left in Arabic, follows the count live, and axe-core finds no serious or
// critical violation on it.
//
//   BASE=http://127.0.0.1:PORT SLUG=slug [CHROMIUM=/usr/bin/chromium] node page.mjs
//
// The petition must count at once (no email confirmation) and have an Arabic
// translation. Progress goes to stderr; the last line on stdout is the JSON
// outcome, exit 0; on failure the error, exit 1.

import process from 'node:process';
import { axe as axeCheck, fail, launch, logger, run } from './harness.mjs';

const BASE = process.env.BASE;
const SLUG = process.env.SLUG;
const OVERALL_MS = 120_000;
const PAGE = `${BASE}/p/${SLUG}`;

const log = logger('page');


const axe = (page, what) => axeCheck(page, what, log);

async function fill(page, signer) {
  await page.fill('#full_name', signer.full_name);
  await page.fill('#email', signer.email);
  await page.selectOption('#country', signer.country);
}

async function count(page) {
  const text = await page.textContent('[data-count]');
  return Number(text.replace(/[^0-9]/g, ''));
}

async function main() {
  if (!BASE || !SLUG) fail('BASE and SLUG are needed');
  const browser = await launch();
  const outcome = { ok: false, axe: [] };
  try {
    // Without JavaScript: a plain form that lands on the thanks page, or
    // back on the page with the field's fault beside it.
    const plain = await browser.newContext({ javaScriptEnabled: false, locale: 'en-GB' });
    const p1 = await plain.newPage();
    await p1.goto(PAGE);
    await p1.fill('#email', 'nojs@example.org');
    await p1.selectOption('#country', 'NL');
    await Promise.all([p1.waitForNavigation(), p1.click('button[type=submit]')]);
    if (!p1.url().includes('errors=full_name.required')) fail(`no-JS fault landed on ${p1.url()}`);
    const nameError = (await p1.textContent('#full_name-error')).trim();
    if (!nameError) fail('no-JS: the name field shows no error');
    if ((await p1.getAttribute('#full_name', 'aria-invalid')) !== 'true') fail('no-JS: the name is not marked invalid');
    const faultUrl = p1.url();
    await fill(p1, { full_name: 'Nour Without Script', email: 'nojs@example.org', country: 'NL' });
    await Promise.all([p1.waitForNavigation(), p1.click('button[type=submit]')]);
    if (!new URL(p1.url()).pathname.endsWith(`/p/${SLUG}/thanks`)) fail(`no-JS landed on ${p1.url()}`);
    outcome.noScriptReceipt = (await p1.textContent('.thanks code')).trim();
    const thanksUrl = p1.url();
    log('signed without JavaScript:', outcome.noScriptReceipt);

    // With JavaScript: fetch, errors inline, a thank-you state, a live count.
    // axe-core runs as a script (CSP bypassed for it) on what the plain
    // form showed, then on the scripted page's states.
    const scripted = await browser.newContext({ locale: 'en-GB', bypassCSP: true });
    const checked = await scripted.newPage();
    for (const [what, url] of [['page with a fault', faultUrl], ['thanks page', thanksUrl]]) {
      await checked.goto(url);
      outcome.axe.push(...await axe(checked, what));
    }
    await checked.close();
    const p2 = await scripted.newPage();
    const errors = [];
    p2.on('pageerror', (e) => errors.push(String(e)));
    await p2.goto(PAGE);
    outcome.axe.push(...await axe(p2, 'page'));
    const before = await count(p2);
    // Countries are named in the page's language once the script ran.
    const named = await p2.textContent('#country option[value="NL"]');
    if (!/Netherlands/.test(named)) fail(`the country list reads ${named}`);
    await fill(p2, { full_name: 'Amal Scripted', email: 'not an address', country: 'EG' });
    await p2.click('button[type=submit]');
    await p2.waitForFunction(() => document.getElementById('email-error').textContent.trim() !== '');
    if (p2.url() !== PAGE) fail(`the scripted form navigated to ${p2.url()}`);
    if ((await p2.getAttribute('#email', 'aria-invalid')) !== 'true') fail('the email is not marked invalid');
    outcome.inlineError = (await p2.textContent('#email-error')).trim();
    outcome.axe.push(...await axe(p2, 'page with an inline error'));
    await p2.fill('#email', 'amal@example.org');
    await p2.click('button[type=submit]');
    await p2.waitForSelector('#thanks:not([hidden])');
    if (!(await p2.isHidden('#sign'))) fail('the form is still shown after signing');
    outcome.scriptReceipt = (await p2.textContent('#thanks [data-receipt]')).trim();
    if (!/^[0-9a-f-]{36}$/.test(outcome.scriptReceipt)) fail(`receipt ${outcome.scriptReceipt}`);
    // Its own signature, then one made elsewhere: the count follows both
    // without a reload.
    await p2.waitForFunction((n) => Number(document.querySelector('[data-count]').textContent.replace(/[^0-9]/g, '')) >= n, before + 1, { timeout: 5000 });
    const seen = await count(p2);
    const elsewhere = await fetch(`${BASE}/v1/petitions/${SLUG}/signatures`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ full_name: 'Elsewhere Signer', email: 'elsewhere@example.org', country: 'AZ' }),
    });
    if (elsewhere.status !== 202) fail(`signing elsewhere: ${elsewhere.status}`);
    const signedAt = Date.now();
    await p2.waitForFunction((n) => Number(document.querySelector('[data-count]').textContent.replace(/[^0-9]/g, '')) > n, seen, { timeout: 2000 });
    outcome.liveMs = Date.now() - signedAt;
    outcome.countBefore = before;
    outcome.countAfter = await count(p2);
    log(`the count went ${before} → ${outcome.countAfter}, the last change shown in ${outcome.liveMs} ms`);
    if (errors.length) fail(`script errors: ${errors.join('; ')}`);

    // Arabic: right to left, in its own words.
    const p3 = await scripted.newPage();
    await p3.goto(`${PAGE}?locale=ar`);
    outcome.arabic = {
      lang: await p3.getAttribute('html', 'lang'),
      dir: await p3.getAttribute('html', 'dir'),
      title: (await p3.textContent('h1')).trim(),
      button: (await p3.textContent('button[type=submit]')).trim(),
    };
    if (outcome.arabic.dir !== 'rtl') fail(`the Arabic page is ${outcome.arabic.dir}`);
    outcome.axe.push(...await axe(p3, 'Arabic page'));

    if (outcome.axe.length) fail(`axe-core: ${outcome.axe.join(', ')}`);
    outcome.ok = true;
    return outcome;
  } finally {
    await browser.close().catch(() => {});
  }
}

await run('page', OVERALL_MS, main);
