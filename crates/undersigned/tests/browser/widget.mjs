// Drives the embeddable widget (/widget.js) in headless Chromium, on pages
// served from other origins: on a site the petition allows it shows the
// petition, signs and follows the count; on a stranger's site the browser
// refuses its signing; in both, no style crosses the shadow root.
//
//   ALLOWED_URL=http://127.0.0.1:P1/ STRANGER_URL=http://127.0.0.1:P2/ \
//   FRENCH_URL=http://127.0.0.1:P3/ [CHROMIUM=/usr/bin/chromium] node widget.mjs
//
// Both pages include the widget for the same petition and style their own
// <h2> red. The French page (`<html lang="fr_FR">`) embeds a petition that
// asks for a postal code: the widget speaks French and links to the
// petition's own page instead of showing a form. The last line on stdout is
// the JSON outcome.

import process from 'node:process';
import { fail, launch, logger, run } from './harness.mjs';

const ALLOWED_URL = process.env.ALLOWED_URL;
const STRANGER_URL = process.env.STRANGER_URL;
const FRENCH_URL = process.env.FRENCH_URL;
const OVERALL_MS = 90_000;
const log = logger('widget');

async function sign(page, email) {
  await page.waitForFunction(() => {
    const host = document.querySelector('.undersigned-widget');
    return host && host.shadowRoot && host.shadowRoot.querySelector('h2').textContent.trim() !== '';
  });
  await page.fill('.undersigned-widget #w-name', 'Widget Signer');
  await page.fill('.undersigned-widget #w-email', email);
  await page.selectOption('.undersigned-widget #w-country', 'DK');
  await page.click('.undersigned-widget button');
}

async function styles(page) {
  return page.evaluate(() => {
    const own = document.querySelector('body > h2');
    const widget = document.querySelector('.undersigned-widget').shadowRoot.querySelector('h2');
    return { own: getComputedStyle(own).color, widget: getComputedStyle(widget).color };
  });
}

async function main() {
  if (!ALLOWED_URL || !STRANGER_URL || !FRENCH_URL) fail('ALLOWED_URL, STRANGER_URL and FRENCH_URL are needed');
  const browser = await launch();
  const outcome = { ok: false };
  try {
    const context = await browser.newContext({ locale: 'en-GB' });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(ALLOWED_URL);
    await sign(page, 'widget@example.org');
    await page.waitForSelector('.undersigned-widget [data-thanks]:not([hidden])', { timeout: 10000 });
    outcome.title = (await page.textContent('.undersigned-widget h2')).trim();
    await page.waitForFunction(() => document.querySelector('.undersigned-widget').shadowRoot
      .querySelector('[data-count]').textContent.trim() === '1', null, { timeout: 5000 });
    outcome.count = 1;
    outcome.styles = await styles(page);
    if (outcome.styles.own !== 'rgb(255, 0, 0)') fail(`the widget changed the page's own style: ${outcome.styles.own}`);
    if (outcome.styles.widget === 'rgb(255, 0, 0)') fail('the page\'s style reached into the widget');
    if (errors.length) fail(`script errors: ${errors.join('; ')}`);
    log('signed on the allowed site; the count shows 1');

    const stranger = await context.newPage();
    await stranger.goto(STRANGER_URL);
    await sign(stranger, 'stranger@example.org');
    await stranger.waitForSelector('.undersigned-widget [data-problem]:not([hidden])', { timeout: 10000 });
    outcome.strangerProblem = (await stranger.textContent('.undersigned-widget [data-problem]')).trim();
    if (await stranger.isVisible('.undersigned-widget [data-thanks]')) fail('the stranger\'s site signed');
    log('refused on the stranger\'s site:', outcome.strangerProblem);

    const french = await context.newPage();
    await french.goto(FRENCH_URL);
    await french.waitForSelector('.undersigned-widget a.page', { timeout: 10000 });
    outcome.french = await french.evaluate(() => {
      const root = document.querySelector('.undersigned-widget').shadowRoot;
      const link = root.querySelector('a.page');
      return {
        title: root.querySelector('h2').textContent.trim(),
        link: link.textContent.trim(),
        href: link.href,
        form: root.querySelector('form') !== null,
      };
    });
    log('the French page links to the petition\'s page:', outcome.french.href);
    outcome.ok = true;
    return outcome;
  } finally {
    await browser.close().catch(() => {});
  }
}

await run('widget', OVERALL_MS, main);
