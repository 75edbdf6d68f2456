// Drives the organizers' dashboard (/dashboard/) in headless Chromium: an
// organizer logs in with their token (kept in sessionStorage, never in the
// address), sees the chart, the map shaded by country and the events by
// name, watches the count follow a signature made elsewhere without a
// reload, and axe-core finds no serious or critical violation.
//
//   BASE=http://127.0.0.1:PORT SLUG=slug TOKEN=... EVENT_NAME=... \
//   [CHROMIUM=/usr/bin/chromium] node dashboard.mjs
//
// The last line on stdout is the JSON outcome, exit 0; else the error, exit 1.

import process from 'node:process';
import { axe as axeCheck, fail, launch, logger, run } from './harness.mjs';

const { BASE, SLUG, TOKEN, EVENT_NAME } = process.env;
const OVERALL_MS = 90_000;
const log = logger('dashboard');

const axe = (page, what) => axeCheck(page, what, log);

const total = (page) => page.evaluate(() => Number(document.getElementById('total').textContent.replace(/[^0-9]/g, '')));

async function main() {
  if (!BASE || !SLUG || !TOKEN) fail('BASE, SLUG and TOKEN are needed');
  const browser = await launch();
  const outcome = { ok: false, axe: [] };
  try {
    const context = await browser.newContext({ locale: 'en-GB', bypassCSP: true, viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${BASE}/dashboard/`);
    outcome.axe.push(...await axe(page, 'login'));
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#board:not([hidden])');
    await page.waitForFunction(() => Number(document.getElementById('chart').dataset.points || 0) > 0
      && Number(document.getElementById('map').dataset.shaded || 0) > 0
      && document.querySelector('#chart canvas'));
    outcome.chartPoints = Number(await page.getAttribute('#chart', 'data-points'));
    outcome.shaded = Number(await page.getAttribute('#map', 'data-shaded'));
    outcome.mapPaths = await page.evaluate(() => document.querySelectorAll('#map path').length);
    outcome.events = await page.evaluate(() => Array.from(document.querySelectorAll('#events tbody td:first-child')).map((td) => td.textContent));
    if (EVENT_NAME && !outcome.events.includes(EVENT_NAME)) fail(`events shown: ${outcome.events}`);
    outcome.snippet = await page.textContent('#snippet');
    outcome.inAddress = page.url().includes(TOKEN);
    outcome.kept = await page.evaluate(() => ({ session: sessionStorage.getItem('undersigned.token') !== null, local: localStorage.length }));
    outcome.axe.push(...await axe(page, 'dashboard'));

    // A signature elsewhere: the count follows at once, the chart within its 5 s.
    const before = await total(page);
    const chartBefore = Number(await page.getAttribute('#chart', 'data-last'));
    const r = await fetch(`${BASE}/v1/petitions/${SLUG}/signatures`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ full_name: 'Live Signer', email: 'live@example.org', country: 'VN' }),
    });
    if (r.status !== 202) fail(`signing elsewhere: ${r.status}`);
    const signed = Date.now();
    await page.waitForFunction((n) => Number(document.getElementById('total').textContent.replace(/[^0-9]/g, '')) > n, before, { timeout: 3000 });
    outcome.liveMs = Date.now() - signed;
    await page.waitForFunction((n) => Number(document.getElementById('chart').dataset.last) > n, chartBefore, { timeout: 10000 });
    outcome.chartFollowed = true;
    outcome.countBefore = before;
    outcome.countAfter = await total(page);
    if (errors.length) fail(`script errors: ${errors.join('; ')}`);
    if (outcome.axe.length) fail(`axe-core: ${outcome.axe.join(', ')}`);
    outcome.ok = true;
    return outcome;
  } finally {
    await browser.close().catch(() => {});
  }
}

await run('dashboard', OVERALL_MS, main);
