// The kiosk at a street event, as a volunteer meets it, in headless Chromium
// with storage that outlives the browser (a tablet restarted):
//
//  1. enroll by opening the enrollment link (no typing), choose the PIN;
//  2. go offline and reload the page: the service worker brings it back;
//  3. take three signatures offline, the third in Arabic (right to left);
//  4. restart the browser, still offline, and find the three waiting;
//  5. go online: the three are sent and counted;
//  6. a signer who had signed already is refused; behind the PIN the
//     volunteer sees why, corrects the address with them and sends it again;
//  7. untouched for a minute (the page's clock run forward), the lock hides
//     what the last signer typed.
// axe-core checks each screen on the way.
//
//   ENROLL_URL=http://127.0.0.1:PORT/kiosk/#enroll=CODE PROFILE_DIR=dir [ARABIC_TITLE=…] \
//   [CHROMIUM=/usr/bin/chromium] [SCREENSHOT_DIR=dir] node street.mjs
//
// Progress goes to stderr; the last line on stdout is the JSON outcome.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { axe, fail, launchPersistent, logger, run, textOf, waitForText } from './harness.mjs';

const ENROLL_URL = process.env.ENROLL_URL;
const PROFILE_DIR = process.env.PROFILE_DIR;
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || '';
const OVERALL_MS = 150_000;
const PIN = '2468';
// The signing page's label for the name, in Arabic (pages/words.rs).
const ARABIC_FULL_NAME = 'الاسم الكامل';
// The petition's title in Arabic, when it has one.
const ARABIC_TITLE = process.env.ARABIC_TITLE || '';

const SIGNERS = [
  { full_name: 'Zoë Ångström', email: 'zoe@example.org', country: 'NL' },
  { full_name: 'Мария Иванова', email: 'maria@example.org', country: 'BG' },
  { full_name: 'ليلى حسن', email: 'layla@example.org', country: 'JO', language: 'ar' },
];

const log = logger('street');

function watch(page, problems) {
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (err) => problems.push(`page error: ${err && err.message ? err.message : String(err)}`));
  page.on('console', (msg) => {
    // Offline, the browser itself reports each request that could not go.
    if (msg.type() === 'error' && !/ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(msg.text())) {
      problems.push(`console error: ${msg.text()}`);
    }
  });
  // Discarding asks first; a test that gets there means it.
  page.on('dialog', (dialog) => dialog.accept());
}

async function main() {
  if (!ENROLL_URL) fail('ENROLL_URL is not set');
  if (!PROFILE_DIR) fail('PROFILE_DIR is not set');
  const kioskUrl = ENROLL_URL.split('#')[0];
  const problems = [];
  const violations = [];
  const options = { viewport: { width: 1024, height: 768 }, locale: 'en-US' };
  let context = await launchPersistent(PROFILE_DIR, options);
  try {
    let page = context.pages()[0] || await context.newPage();
    watch(page, problems);
    const noProblems = (step) => {
      if (problems.length > 0) fail(`${step}: ${problems.join('; ')}`);
    };
    const text = (selector) => textOf(page, selector);
    const waitText = (selector, expected, timeout) => waitForText(page, selector, expected, timeout);
    const shoot = async (name) => {
      if (!SCREENSHOT_DIR) return;
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`) });
    };
    const signScreen = () => page.waitForFunction(() => {
      const screen = document.getElementById('sign-screen');
      const title = document.getElementById('petition-title');
      const missing = document.getElementById('petition-missing');
      return screen && !screen.hidden && title.textContent.trim() !== '' && missing.hidden;
    }, null, { timeout: 15_000, polling: 100 });
    const sign = async (signer, i) => {
      if (signer.language) await page.locator('#language').selectOption(signer.language);
      await page.locator('#full_name').fill(signer.full_name);
      await page.locator('#email').fill(signer.email);
      await page.locator('#country').selectOption(signer.country);
      await page.locator('#sign').click();
      await page.locator('#thanks').waitFor({ state: 'visible', timeout: 5_000 }).catch(async () => {
        const error = await page.locator('#sign-error').innerText().catch(() => '');
        fail(`no thank-you after signature ${i}${error ? `: ${error}` : ''}`);
      });
      // Thanked in the language they signed in.
      const thanks = await text('#thanks .thanks-big');
      if (signer.language && thanks === 'Thank you!') fail(`signature ${i} was thanked in English`);
      await page.locator('#thanks').click();
      log(`signature ${i} stored`);
    };

    // 1. The enrollment link: nothing to type but the PIN.
    log('opening the enrollment link');
    await page.goto(ENROLL_URL, { waitUntil: 'load' });
    await page.locator('#pin-new').waitFor({ state: 'visible' }).catch(async () => {
      const error = await page.locator('#enroll-error').innerText().catch(() => '');
      fail(`the link did not enroll the tablet${error ? `: ${error}` : ''}`);
    });
    if ((await page.evaluate(() => location.hash)) !== '') fail('the code stayed in the address bar');
    violations.push(...await axe(page, 'PIN', log));
    await page.locator('#pin-new').fill('12');
    await page.locator('#pin-save').click();
    await page.locator('#pin-error').waitFor({ state: 'visible' });
    await page.locator('#pin-new').fill(PIN);
    await page.locator('#pin-again').fill(PIN);
    await page.locator('#pin-save').click();
    await signScreen();
    log('enrolled by link; petition:', await text('#petition-title'));
    // The worker keeps the page from now on; the petition's texts are kept.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15_000 });
    await page.waitForFunction(() => new Promise((resolve) => {
      const open = indexedDB.open('undersigned-kiosk');
      open.onerror = () => resolve(false);
      open.onsuccess = () => {
        const db = open.result;
        const get = db.transaction('settings').objectStore('settings').get('petition');
        get.onsuccess = () => {
          db.close();
          resolve(get.result !== undefined);
        };
        get.onerror = () => {
          db.close();
          resolve(false);
        };
      };
    }), null, { timeout: 15_000, polling: 200 }).catch(() => fail('the petition was not kept for offline use'));
    await waitText('#online', 'online', 5_000);
    violations.push(...await axe(page, 'form', log));
    await shoot('street-form');
    noProblems('enrolling');

    // 2. Offline, reloaded: the page comes from the worker, the petition from IndexedDB.
    await context.setOffline(true);
    await page.reload({ waitUntil: 'load' });
    await signScreen().catch(() => fail('offline, the reloaded page did not come back'));
    await waitText('#online', 'offline', 5_000);
    log('reloaded offline');

    // 3. Three signatures offline; the third signer reads Arabic.
    let arabic = null;
    for (const [i, signer] of SIGNERS.entries()) {
      if (signer.language === 'ar') {
        await page.locator('#language').selectOption('ar');
        arabic = await page.evaluate(() => ({
          dir: document.documentElement.dir,
          lang: document.documentElement.lang,
          label: document.querySelector('label[for=full_name]').textContent.trim(),
        }));
        if (arabic.dir !== 'rtl' || arabic.lang !== 'ar') fail(`Arabic: ${JSON.stringify(arabic)}`);
        if (arabic.label !== ARABIC_FULL_NAME) fail(`the name's label in Arabic reads ${arabic.label}`);
        // The petition's own Arabic words, kept for offline use.
        const title = await text('#petition-title');
        if (ARABIC_TITLE && title !== ARABIC_TITLE) fail(`the petition's title in Arabic reads ${title}`);
        violations.push(...await axe(page, 'form in Arabic', log));
        await shoot('street-arabic');
      }
      await sign(signer, i + 1);
    }
    // Each signer starts in the tablet's language.
    if ((await page.evaluate(() => document.documentElement.dir)) !== 'ltr') fail('the next signer kept Arabic');
    await waitText('#waiting', '3', 5_000);
    await waitText('#taken', '3', 5_000);
    noProblems('signing offline');

    // 4. The tablet restarts, still offline.
    await context.close();
    context = await launchPersistent(PROFILE_DIR, { ...options, offline: true });
    page = context.pages()[0] || await context.newPage();
    watch(page, problems);
    await page.goto(kioskUrl, { waitUntil: 'load' }).catch((e) => fail(`offline after a restart: ${e.message}`));
    await signScreen().catch(() => fail('offline after a restart, the page did not come back'));
    await waitText('#waiting', '3', 5_000);
    log('restarted offline: 3 waiting');

    // 5. Online again: sent, counted.
    await context.setOffline(false);
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await waitText('#waiting', '0', 20_000);
    await waitText('#tally', '3', 20_000);
    await page.locator('#progress-block').waitFor({ state: 'visible' });
    log('synced:', await text('#progress-text'));
    noProblems('syncing');

    // 6. A signer who signed already: refused, shown, corrected, sent.
    await sign({ ...SIGNERS[0], full_name: 'Zoe Angstrom' }, 4);
    await page.locator('#rejected').waitFor({ state: 'visible', timeout: 20_000 });
    await waitText('#rejected-count', '1', 5_000);
    await page.locator('#open-panel').click();
    await page.locator('#pin-check').fill('1111');
    await page.locator('#pin-check-open').click();
    await page.locator('#pin-check-error').waitFor({ state: 'visible' });
    if (await page.locator('#panel').isVisible()) fail('a wrong PIN opened the panel');
    await page.locator('#pin-check').fill(PIN);
    await page.locator('#pin-check-open').click();
    await page.locator('#panel').waitFor({ state: 'visible' });
    const refused = await text('#refused-list');
    if (!refused.includes('Zoe Angstrom') || !refused.includes('This person had already signed.')) {
      fail(`the refused list reads ${JSON.stringify(refused)}`);
    }
    violations.push(...await axe(page, 'volunteers\' panel', log));
    await shoot('street-refused');
    await page.locator('#refused-list button.primary').first().click();
    if ((await page.locator('#full_name').inputValue()) !== 'Zoe Angstrom') fail('the correction did not fill the form');
    await page.locator('#email').fill('zoe.angstrom@example.org');
    await page.locator('#sign').click();
    await page.locator('#thanks').waitFor({ state: 'visible' });
    await page.locator('#thanks').click();
    await page.locator('#rejected').waitFor({ state: 'hidden', timeout: 20_000 });
    await waitText('#waiting', '0', 20_000);
    await waitText('#tally', '4', 20_000);
    const progress = await text('#progress-text');
    log('corrected and counted:', progress);
    noProblems('correcting');

    // 7. The idle lock, with the page's clock under the test's hand.
    await page.clock.install();
    await page.reload({ waitUntil: 'load' });
    await signScreen();
    await page.locator('#full_name').fill('Someone Walking Away');
    await page.clock.fastForward('00:30');
    if (await page.locator('#lock').isVisible()) fail('locked after 30 s');
    await page.clock.fastForward('00:31');
    await page.locator('#lock').waitFor({ state: 'visible', timeout: 5_000 });
    const name = await page.locator('#full_name').inputValue();
    const shown = await page.locator('body').innerText();
    if (name !== '' || shown.includes('Someone Walking Away')) fail('the lock left the last name in view');
    violations.push(...await axe(page, 'lock', log));
    await shoot('street-lock');
    await page.locator('#unlock').click();
    await page.locator('#lock').waitFor({ state: 'hidden' });
    log('the lock hid the name');
    noProblems('the lock');

    return {
      ok: true,
      waiting: Number(await text('#waiting')),
      tally: Number(await text('#tally')),
      taken: Number(await text('#taken')),
      arabic,
      progress,
      violations,
    };
  } finally {
    await context.close().catch(() => {});
  }
}

await run('street', OVERALL_MS, main);
