// What every browser script shares: launching Debian's Chromium headless,
// axe-core's check of a page, and the outcome protocol the Rust tests read
// (progress on stderr; the last line on stdout is the JSON outcome, exit 0,
// or {"ok":false,"error"}, exit 1, also when the whole run overstays).

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import process from 'node:process';
import { chromium } from 'playwright-core';

export function fail(message) {
  throw new Error(message);
}

export function logger(name) {
  return (...args) => console.error(`[${name}]`, ...args);
}

const BROWSER = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

export function launch() {
  return chromium.launch(BROWSER);
}

/// A browser whose storage (IndexedDB, service workers, caches) lives in
/// `dir`: closing it and launching again with the same `dir` is a tablet
/// restarted.
export function launchPersistent(dir, options) {
  return chromium.launchPersistentContext(dir, { ...BROWSER, ...options });
}

/// The text an element shows, trimmed.
export function textOf(page, selector) {
  return page.locator(selector).innerText().then((s) => s.trim());
}

/// Waits until the element reads `expected`; fails saying what it read.
export function waitForText(page, selector, expected, timeout) {
  return page.waitForFunction(
    ([sel, want]) => {
      const el = document.querySelector(sel);
      return el !== null && el.textContent.trim() === want;
    },
    [selector, expected],
    { timeout, polling: 100 },
  ).catch(async () => {
    const got = await textOf(page, selector).catch(() => '(missing)');
    fail(`${selector} should read ${JSON.stringify(expected)} within ${timeout} ms; it reads ${JSON.stringify(got)}`);
  });
}

let axeSource = null;

/// axe-core's serious and critical violations on the page as it is now (its
/// context must bypass the page's CSP, for axe runs as a script), each as
/// `what: rule`, logged with the elements they concern.
export async function axe(page, what, log) {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) log(`axe ${what}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
  return bad.map((v) => `${what}: ${v.id}`);
}

/// Runs `main` and reports its outcome; gives up after `overallMs`.
export async function run(name, overallMs, main) {
  const guard = setTimeout(() => {
    console.error(`[${name}] timed out`);
    console.log(JSON.stringify({ ok: false, error: `timed out after ${overallMs} ms` }));
    process.exit(1);
  }, overallMs);
  try {
    const outcome = await main();
    clearTimeout(guard);
    console.log(JSON.stringify(outcome));
    process.exit(0);
  } catch (err) {
    clearTimeout(guard);
    console.error(`[${name}] failed:`, err && err.stack ? err.stack : String(err));
    console.log(JSON.stringify({ ok: false, error: err && err.message ? err.message : String(err) }));
    process.exit(1);
  }
}
