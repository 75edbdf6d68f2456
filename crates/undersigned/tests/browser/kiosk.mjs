// Drives the kiosk page in headless Chromium: enroll a tablet, sign three times
// offline, go back online and wait for the outbox to drain and the tally to count.
//
//   KIOSK_URL=http://127.0.0.1:PORT/kiosk/ ENROLL_CODE=... \
//   [CHROMIUM=/usr/bin/chromium] [SCREENSHOT_DIR=dir] node kiosk.mjs
//
// Progress goes to stderr; the last line on stdout is the JSON outcome:
// {"ok":true,"waiting":0,"tally":3}, exit 0; on failure the error, exit 1.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { fail, launch, logger, run, textOf, waitForText } from './harness.mjs';

const KIOSK_URL = process.env.KIOSK_URL;
const ENROLL_CODE = process.env.ENROLL_CODE;
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || '';
// The whole run may take no longer than this.
const OVERALL_MS = 120_000;

const SIGNERS = [
  { full_name: 'Zoë Ångström', email: 'zoe@example.org', country: 'NL', postal_code: '1011 AB', city: 'Amsterdam' },
  { full_name: 'Мария Иванова', email: 'maria@example.org', country: 'BG', postal_code: '1000', city: 'София' },
  { full_name: 'Leyla Məmmədova', email: 'leyla@example.org', country: 'AZ', postal_code: 'AZ1000', city: 'Bakı' },
];

const log = logger('kiosk');

async function main() {
  if (!KIOSK_URL) fail('KIOSK_URL is not set');
  if (!ENROLL_CODE) fail('ENROLL_CODE is not set');

  const problems = [];
  let browser;
  try {
    browser = await launch();
    const context = await browser.newContext({
      viewport: { width: 1024, height: 768 },
      locale: 'en-US',
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => {
      const text = `page error: ${err && err.message ? err.message : String(err)}`;
      problems.push(text);
      log(text);
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        const text = `console error: ${msg.text()}`;
        problems.push(text);
        log(text);
      }
    });
    const noProblems = (step) => {
      if (problems.length > 0) fail(`${step}: ${problems.join('; ')}`);
    };
    const text = (selector) => textOf(page, selector);
    const waitText = (selector, expected, timeout) => waitForText(page, selector, expected, timeout);

    // 1. Enroll.
    log('opening', KIOSK_URL);
    const response = await page.goto(KIOSK_URL, { waitUntil: 'load' });
    if (!response || !response.ok()) fail(`loading the page: HTTP ${response ? response.status() : 'no response'}`);
    await page.locator('#code').waitFor({ state: 'visible' });
    await page.locator('#code').fill(ENROLL_CODE);
    await page.locator('#label').fill('Tablet 1');
    await page.locator('#enroll').click();
    // The organizer chooses the PIN that guards the volunteers' panel.
    await page.locator('#pin-new').waitFor({ state: 'visible' });
    await page.locator('#pin-new').fill('2468');
    await page.locator('#pin-again').fill('2468');
    await page.locator('#pin-save').click();
    await page.waitForFunction(() => {
      const screen = document.getElementById('sign-screen');
      const title = document.getElementById('petition-title');
      const missing = document.getElementById('petition-missing');
      return screen && !screen.hidden && title && title.textContent.trim() !== '' &&
        missing && missing.hidden;
    }, null, { timeout: 15_000, polling: 100 }).catch(async () => {
      const error = await page.locator('#enroll-error').innerText().catch(() => '');
      fail(`the sign screen did not come up with the petition${error ? `: ${error}` : ''}`);
    });
    await page.locator('#petition-title').waitFor({ state: 'visible' });
    log('enrolled; petition:', await text('#petition-title'));
    // Let the first petition, count and sync requests finish before cutting the network.
    await page.waitForLoadState('networkidle');
    noProblems('enrolling');

    // 2. Sign three times offline.
    await context.setOffline(true);
    await waitText('#online', 'offline', 5_000);
    for (const [i, signer] of SIGNERS.entries()) {
      await page.locator('#full_name').fill(signer.full_name);
      await page.locator('#email').fill(signer.email);
      const country = page.locator('#country');
      if ((await country.evaluate((el) => el.tagName)) === 'SELECT') {
        await country.selectOption(signer.country);
      } else {
        await country.fill(signer.country);
      }
      // Fill what the petition requires, if it does.
      if (await page.locator('#postal_code').evaluate((el) => el.required)) {
        await page.locator('#postal_code').fill(signer.postal_code);
      }
      if (await page.locator('#city').evaluate((el) => el.required)) {
        await page.locator('#city').fill(signer.city);
      }
      await page.locator('#sign').click();
      await page.locator('#thanks').waitFor({ state: 'visible', timeout: 5_000 }).catch(async () => {
        const error = await page.locator('#sign-error').innerText().catch(() => '');
        fail(`no thank-you after signature ${i + 1}${error ? `: ${error}` : ''}`);
      });
      await page.locator('#thanks').waitFor({ state: 'hidden', timeout: 10_000 });
      const name = await page.locator('#full_name').inputValue();
      if (name !== '') fail(`the form was not cleared after signature ${i + 1}`);
      log(`signature ${i + 1} stored`);
    }
    await waitText('#waiting', '3', 5_000);
    noProblems('signing offline');

    // 3. Still offline a moment later: nothing sent, nothing lost.
    await page.waitForTimeout(1_000);
    await waitText('#waiting', '3', 1_000);
    log('3 waiting while offline');

    // 4. Back online: the `online` event starts a sync.
    await context.setOffline(false);
    await waitText('#waiting', '0', 20_000);
    await waitText('#tally', '3', 20_000);
    await waitText('#online', 'online', 5_000);
    const rejected = await page.locator('#rejected').isVisible();
    if (rejected) fail(`some signatures were rejected: ${await text('#rejected')}`);
    noProblems('syncing');
    log('synced: 0 waiting, tally 3');

    if (SCREENSHOT_DIR) {
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const file = path.join(SCREENSHOT_DIR, 'kiosk.png');
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: file, fullPage: false });
      log('screenshot', file);
    }

    const waiting = Number(await text('#waiting'));
    const tally = Number(await text('#tally'));
    noProblems('the end');
    return { ok: true, waiting, tally };
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

await run('kiosk', OVERALL_MS, main);
