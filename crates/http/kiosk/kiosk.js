// The kiosk: a tablet at a street event that many passers-by sign on in turn,
// often offline. Every signature is stored in IndexedDB first and sent later,
// in batches, with the tablet's device token.
//
// It keeps working with no network: a service worker (sw.js) keeps the
// page's files, IndexedDB the signatures, the petition's text in each of its
// languages, and the tallies last seen.
//
// It speaks the signer's language: every text is looked up in WORDS (written
// in by the service from kiosk/words.json and the signing page's labels); a
// signer may switch language on the form, and their signature records it.
//
// Volunteers: signatures the service refused are listed, with the reasons, to
// correct with the signer or discard; the list and the tablet's settings are
// behind the organizer PIN chosen at enrollment (kept as a PBKDF2 hash). After
// a minute untouched the form is emptied and a lock covers the page.
//
// Privacy: a signature's personal data goes to IndexedDB and to the batch
// endpoint, nowhere else; nothing here logs it (or anything) to the console.
'use strict';

(() => {
  // ---------------------------------------------------------------- constants

  const DB_NAME = 'undersigned-kiosk';
  const DB_VERSION = 1;
  const BATCH_MAX = 500;
  const SYNC_EVERY_MS = 15_000;
  const TALLY_EVERY_MS = 10_000;
  const PETITION_EVERY_MS = 10 * 60_000;
  const THANKS_MS = 3_000;
  const FORGET_EVERY_MS = 60 * 60_000;
  // How often an open kiosk asks whether a new release is out.
  const UPDATE_EVERY_MS = 30 * 60_000;
  // Untouched this long, the form is emptied and the lock shown.
  const IDLE_LOCK_MS = 60_000;
  const PIN_ITERATIONS = 200_000;
  const PIN_SHAPE = /^[0-9]{4,8}$/;
  // Languages written right to left.
  const RTL = new Set(['ar', 'fa', 'he', 'ur']);
  // The service writes the catalogue in: {language: {key: text}}.
  const WORDS = /*WORDS*/{};
  const LANGUAGES = Object.keys(WORDS);
  const BACKOFF_MIN_MS = 2_000;
  const BACKOFF_MAX_MS = 60_000;
  const RETRY_AFTER_MAX_MS = 60 * 60_000;

  // ISO 3166-1 alpha-2, the same list the service accepts (plus XK).
  const COUNTRIES = (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS ' +
    'BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE ' +
    'EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM ' +
    'HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC ' +
    'LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA ' +
    'NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO ' +
    'TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW'
  ).split(' ');
  const COUNTRY_SET = new Set(COUNTRIES);

  // ------------------------------------------------------------------- state

  const state = {
    db: null,
    device: null, // {token, device_id, event_id, expires_at, event}
    petition: null,
    rules: { postal: false, city: false, emailOptional: false, orgs: false },
    saving: false,
    syncing: false,
    syncAgain: false,
    retryAt: 0,
    backoffMs: 0,
    failureKind: null, // 'network' | 'server' | 'refused' | 'error' | null
    retryTimer: 0,
    batchMax: BATCH_MAX,
    revoked: false,
    reachable: null, // null: not known; true/false: the last request's fate
    tallyBusy: false,
    petitionBusy: false,
    thanksTimer: 0,
    idleTimer: 0,
    started: false,
    language: 'en', // the signer's, on the form
    homeLanguage: 'en', // the tablet's, to which the form returns
    petitionByLocale: {}, // locale tag -> the petition as the service gave it
    count: null, // {count, goal} of the petition, last seen
    taken: 0, // signatures taken on this tablet since it enrolled
    pin: null, // {salt, hash, iterations}: hex
    correcting: null, // the refused item being corrected on the form
    waiting: null, // signatures in the outbox, last counted (null: not yet)
    refused: null, // refused and not yet resolved, last counted
    enrolling: false,
    updateReady: false, // a new release's worker waits
    tookUpdate: false,
    clockOffsetMs: 0, // what to add to this tablet's clock to get the service's
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- language

  // The kiosk's language for a locale tag: its own, or English.
  function languageOf(tag) {
    const language = String(tag || '').split(/[-_]/)[0].toLowerCase();
    return LANGUAGES.includes(language) ? language : 'en';
  }

  // The text for `key` in the current language (English when missing), with
  // `{name}` blanks filled from `values`.
  function t(key, values) {
    const words = WORDS[state.language] || {};
    const text = words[key] !== undefined ? words[key] : (WORDS.en || {})[key];
    if (text === undefined) return key;
    return String(text).replace(/\{(\w+)\}/g, (whole, name) =>
      (values && values[name] !== undefined ? String(values[name]) : whole));
  }

  function number(n) {
    try {
      return new Intl.NumberFormat(state.language).format(n);
    } catch (_) {
      return String(n);
    }
  }

  // Every text of the page in `language`, and its direction.
  function applyLanguage(language) {
    state.language = languageOf(language);
    const root = document.documentElement;
    root.lang = state.language;
    root.dir = RTL.has(state.language) ? 'rtl' : 'ltr';
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    for (const el of document.querySelectorAll('[data-t-label]')) {
      el.setAttribute('aria-label', t(el.dataset.tLabel));
    }
    $('label').placeholder = t('enroll_label_example');
    $('language').value = state.language;
    buildCountries();
    if (state.device) {
      renderPetition(petitionFor(state.language));
      renderProgress();
      renderCorrecting();
    }
    updateOnline();
    $('sign-error').hidden = true;
    if ($('panel').open) renderRefused();
  }

  function buildLanguageChoices() {
    for (const select of [$('language'), $('home-language')]) {
      if (select.options.length > 0) continue;
      for (const language of LANGUAGES) {
        const option = document.createElement('option');
        option.value = language;
        option.lang = language;
        option.textContent = WORDS[language].language_name || language;
        select.append(option);
      }
    }
  }

  function onLanguageChosen() {
    applyLanguage($('language').value);
  }

  // --------------------------------------------------------------- IndexedDB

  function openDb() {
    return new Promise((resolve, reject) => {
      if (!('indexedDB' in window)) {
        reject(new Error('no IndexedDB'));
        return;
      }
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('settings')) {
          db.createObjectStore('settings');
        }
        if (!db.objectStoreNames.contains('outbox')) {
          const outbox = db.createObjectStore('outbox', { keyPath: 'id' });
          outbox.createIndex('signed_at', 'signed_at');
        }
        if (!db.objectStoreNames.contains('rejected')) {
          db.createObjectStore('rejected', { keyPath: 'id' });
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        // A newer version of this page wants to upgrade: let it.
        db.onversionchange = () => db.close();
        resolve(db);
      };
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('IndexedDB blocked'));
    });
  }

  // Runs `work(tx)` in one transaction; resolves (with what `work` returned,
  // or that request's result) once the transaction has committed.
  function transact(stores, mode, work) {
    return new Promise((resolve, reject) => {
      let tx;
      try {
        tx = mode === 'readwrite'
          ? state.db.transaction(stores, mode, { durability: 'strict' })
          : state.db.transaction(stores, mode);
      } catch (e) {
        reject(e);
        return;
      }
      let out;
      tx.oncomplete = () => resolve(out instanceof IDBRequest ? out.result : out);
      tx.onerror = () => reject(tx.error || new Error('IndexedDB error'));
      tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
      try {
        out = work(tx);
      } catch (e) {
        try {
          tx.abort();
        } catch (_) {
          // already finished
        }
        reject(e);
      }
    });
  }

  const getSetting = (key) =>
    transact(['settings'], 'readonly', (tx) => tx.objectStore('settings').get(key));
  const putSetting = (key, value) =>
    transact(['settings'], 'readwrite', (tx) => {
      tx.objectStore('settings').put(value, key);
    });
  const countStore = (name) =>
    transact([name], 'readonly', (tx) => tx.objectStore(name).count());
  // The oldest waiting signatures first.
  const readOutbox = (limit) =>
    transact(['outbox'], 'readonly', (tx) =>
      tx.objectStore('outbox').index('signed_at').getAll(null, limit));

  // Signatures the service refused are kept for volunteers to see (and copy
  // onto paper) for a week, then forgotten: they are personal data.
  const REJECTED_KEPT_MS = 7 * 24 * 3600_000;
  const forgetOldRejected = () =>
    transact(['rejected'], 'readwrite', (tx) => {
      const before = Date.now() - REJECTED_KEPT_MS;
      tx.objectStore('rejected').openCursor().onsuccess = (ev) => {
        const cursor = ev.target.result;
        if (!cursor) return;
        if (!(Date.parse(cursor.value.rejected_at) > before)) cursor.delete();
        cursor.continue();
      };
    });

  // --------------------------------------------------------------- utilities

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') {
      return crypto.randomUUID();
    }
    // Outside a secure context randomUUID is missing; getRandomValues is not.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // The service's own rule for a locale tag (language of 2-3 letters, then
  // subtags of 2-8 letters or digits); one it would refuse is left out.
  function acceptableLocale(tag) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > 35) return false;
    const [language, ...rest] = tag.split(/[-_]/);
    return /^[A-Za-z]{2,3}$/.test(language) && rest.every((s) => /^[A-Za-z0-9]{2,8}$/.test(s));
  }

  const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  const POSTAL_SHAPE = /^[\p{L}\p{N} -]{1,16}$/u;

  function isOffline() {
    return navigator.onLine === false;
  }

  // The tablet's clock may be wrong, and a signature's time must fall within
  // its event: the service's clock (its Date header) corrects it, to the second.
  function learnClock(res) {
    // A cached answer (Age, in seconds) was dated that long ago.
    const age = Number(res.headers.get('Age')) || 0;
    const served = Date.parse(res.headers.get('Date') || '') + age * 1000;
    if (Number.isNaN(served)) return;
    const offset = served - Date.now();
    // Within a few seconds is only latency and the header's rounding.
    state.clockOffsetMs = Math.abs(offset) > 5_000 ? offset : 0;
    putSetting('clock_offset_ms', state.clockOffsetMs).catch(() => null);
  }

  function setReachable(value) {
    state.reachable = value;
    updateOnline();
  }

  function updateOnline() {
    const el = $('online');
    const on = !isOffline() && state.reachable !== false;
    el.textContent = on ? t('online') : t('offline');
    el.classList.toggle('online', on);
    el.classList.toggle('offline', !on);
  }

  // Retry-After in seconds, or as an HTTP date; null when absent or unreadable.
  function retryAfterMs(res) {
    const raw = res.headers.get('Retry-After');
    if (!raw) return null;
    const value = raw.trim();
    let ms = null;
    if (/^\d+$/.test(value)) {
      ms = Number(value) * 1000;
    } else {
      const at = Date.parse(value);
      if (!Number.isNaN(at)) ms = at - Date.now();
    }
    if (ms === null) return null;
    return Math.min(Math.max(ms, 1000), RETRY_AFTER_MAX_MS);
  }

  async function readProblem(res) {
    try {
      const body = await res.json();
      return body && typeof body === 'object' ? body : null;
    } catch (_) {
      return null;
    }
  }

  function problemText(problem, status) {
    const answered = t('server_answered', { status });
    if (!problem) return answered;
    const title = typeof problem.title === 'string' ? problem.title : '';
    const detail = typeof problem.detail === 'string' ? problem.detail : '';
    if (title && detail && detail !== title) return `${title}: ${detail}`;
    return title || detail || answered;
  }

  function show(el, text) {
    el.textContent = text;
    el.hidden = false;
  }

  // ---------------------------------------------------------------- start-up

  async function boot() {
    buildLanguageChoices();
    applyLanguage(navigator.language);
    registerWorker();
    // An enrollment link: `#enroll=CODE`. The code leaves the address bar as
    // soon as the tablet is enrolled (it is a secret, if a spent one then).
    const linked = /(?:^#|&)enroll=([^&]+)/.exec(location.hash);
    const forgetLink = () => {
      if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    };
    try {
      state.db = await openDb();
    } catch (_) {
      show($('loading'), t('no_storage'));
      return;
    }
    const setting = (key) => getSetting(key).catch(() => null);
    const device = await setting('device');
    state.clockOffsetMs = Number(await setting('clock_offset_ms')) || 0;
    state.homeLanguage = languageOf((await setting('home_language')) || navigator.language);
    state.pin = await setting('pin');
    applyLanguage(state.homeLanguage);
    await forgetOldRejected().catch(() => null);
    await refreshStoreCounts();
    $('loading').hidden = true;
    if (device && device.token && device.event_id && device.event && device.event.petition) {
      const taken = await setting('taken');
      state.taken = taken && taken.event_id === device.event_id ? Number(taken.value) || 0 : 0;
      forgetLink();
      // A tablet enrolled before PINs (or where none can be kept) goes on signing.
      if (state.pin || !window.isSecureContext) {
        await startSigning(device);
      } else {
        showPinSetup(device);
      }
    } else {
      showEnroll();
      if (linked) {
        let code = linked[1];
        try {
          code = decodeURIComponent(code);
        } catch (_) {
          // a malformed escape: the code as it stands, which the service refuses
        }
        $('code').value = code;
        // Named for the organizers' list of devices.
        await enroll(code.trim(), `kiosk-${uuid().slice(0, 4)}`);
      }
      // Only now, so that a reload during the enrollment could still use it.
      forgetLink();
    }
  }

  // -------------------------------------------------------------- enrollment

  function showEnroll() {
    $('sign-screen').hidden = true;
    $('pin-screen').hidden = true;
    $('enroll-screen').hidden = false;
    $('enroll-form').onsubmit = onEnroll;
    // Without https (or localhost) there is no service worker and no
    // hashing: a tablet would lose the page offline and could keep no PIN.
    if (!window.isSecureContext) enrollError(t('needs_secure'));
  }

  function enrollError(text, focusId) {
    show($('enroll-error'), text);
    if (focusId) $(focusId).focus();
  }

  function onEnroll(ev) {
    ev.preventDefault();
    $('enroll-error').hidden = true;
    const code = $('code').value.trim();
    const label = $('label').value.trim();
    if (!code) {
      enrollError(t('enroll_need_code'), 'code');
      return;
    }
    if (!label) {
      enrollError(t('enroll_need_label'), 'label');
      return;
    }
    enroll(code, label);
  }

  // Exchanges the code for the tablet's token, typed or from a link.
  async function enroll(code, label) {
    const button = $('enroll');
    if (button.disabled) return;
    $('enroll-error').hidden = true;
    if (!window.isSecureContext) {
      enrollError(t('needs_secure'));
      return;
    }
    if (isOffline()) {
      enrollError(t('enroll_offline'));
      return;
    }
    button.disabled = true;
    state.enrolling = true;
    $('enroll-status').hidden = false;
    try {
      let res;
      try {
        res = await fetch('/v1/devices', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ code, label }),
          cache: 'no-store',
        });
      } catch (_) {
        enrollError(t('enroll_unreachable'));
        return;
      }
      if (res.status !== 201 && res.status !== 200) {
        const problem = await readProblem(res);
        const codeInvalid = problem && Array.isArray(problem.errors) &&
          problem.errors.some((e) => e && e.field === 'code');
        enrollError(codeInvalid ? t('enroll_code_invalid') : problemText(problem, res.status),
          codeInvalid ? 'code' : null);
        return;
      }
      const body = await readProblem(res);
      const event = body && body.event;
      if (!body || typeof body.token !== 'string' || !body.event_id || !event ||
          typeof event.petition !== 'string') {
        enrollError(t('enroll_unexpected'));
        return;
      }
      const device = {
        token: body.token,
        device_id: body.device_id,
        event_id: body.event_id,
        expires_at: body.expires_at,
        label,
        event,
      };
      try {
        await putSetting('device', device);
        state.taken = 0;
        await putSetting('taken', { event_id: device.event_id, value: 0 });
      } catch (_) {
        enrollError(t('enroll_store_failed'));
        return;
      }
      $('code').value = '';
      $('label').value = '';
      // Ask the browser not to evict the stored signatures under storage pressure.
      if (navigator.storage && typeof navigator.storage.persist === 'function') {
        navigator.storage.persist().catch(() => {});
      }
      showPinSetup(device);
    } finally {
      button.disabled = false;
      state.enrolling = false;
      $('enroll-status').hidden = true;
    }
  }

  // ---------------------------------------------------------------- the PIN

  const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');

  async function pinHash(pin, saltHex, iterations) {
    const salt = new Uint8Array(saltHex.match(/../g).map((h) => parseInt(h, 16)));
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(pin), 'PBKDF2', false, ['deriveBits']);
    return hex(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256));
  }

  function showPinSetup(device) {
    $('enroll-screen').hidden = true;
    $('sign-screen').hidden = true;
    $('pin-screen').hidden = false;
    $('pin-new').focus();
    $('pin-form').onsubmit = async (ev) => {
      ev.preventDefault();
      const pin = $('pin-new').value;
      $('pin-error').hidden = true;
      if (!PIN_SHAPE.test(pin)) {
        show($('pin-error'), t('pin_shape'));
        $('pin-new').focus();
        return;
      }
      if (pin !== $('pin-again').value) {
        show($('pin-error'), t('pin_mismatch'));
        $('pin-again').focus();
        return;
      }
      $('pin-save').disabled = true;
      try {
        const salt = hex(crypto.getRandomValues(new Uint8Array(16)));
        const stored = { salt, iterations: PIN_ITERATIONS, hash: await pinHash(pin, salt, PIN_ITERATIONS) };
        await putSetting('pin', stored);
        state.pin = stored;
      } catch (_) {
        show($('pin-error'), t('enroll_store_failed'));
        return;
      } finally {
        $('pin-save').disabled = false;
      }
      $('pin-new').value = '';
      $('pin-again').value = '';
      $('pin-screen').hidden = true;
      await startSigning(device);
    };
  }

  // Asks for the PIN; resolves whether it was given right.
  function askPin() {
    return new Promise((resolve) => {
      const dialog = $('pin-dialog');
      const input = $('pin-check');
      input.value = '';
      $('pin-check-error').hidden = true;
      const finish = (ok) => {
        $('pin-check-form').onsubmit = null;
        $('pin-check-cancel').onclick = null;
        dialog.onclose = null;
        if (dialog.open) dialog.close();
        input.value = '';
        resolve(ok);
      };
      $('pin-check-form').onsubmit = async (ev) => {
        ev.preventDefault();
        const pin = input.value;
        let ok = false;
        try {
          ok = Boolean(state.pin) && PIN_SHAPE.test(pin) &&
            (await pinHash(pin, state.pin.salt, state.pin.iterations)) === state.pin.hash;
        } catch (_) {
          ok = false;
        }
        if (ok) {
          finish(true);
        } else {
          $('pin-check-error').hidden = false;
          input.value = '';
          input.focus();
        }
      };
      $('pin-check-cancel').onclick = () => finish(false);
      dialog.onclose = () => finish(false);
      dialog.showModal();
      input.focus();
    });
  }

  // ----------------------------------------------------------------- signing

  async function startSigning(device) {
    state.device = device;
    // Nothing of an earlier enrollment carries over.
    state.revoked = false;
    state.retryAt = 0;
    state.backoffMs = 0;
    state.failureKind = null;
    state.batchMax = BATCH_MAX;
    $('revoked').hidden = true;
    $('sync-error').hidden = true;
    for (const control of $('sign-form').elements) control.disabled = false;
    $('tally').textContent = number(0);
    const event = device.event || {};
    $('enroll-screen').hidden = true;
    $('pin-screen').hidden = true;
    $('sign-screen').hidden = false;

    const where = [event.name, event.place].filter((s) => typeof s === 'string' && s).join(' · ');
    $('event-name').textContent = where;

    let cached = null;
    try {
      cached = await getSetting('petition');
    } catch (_) {
      cached = null;
    }
    if (cached && cached.slug === event.petition) {
      state.petitionByLocale = cached.by_locale || {};
      if (cached.data && cached.data.locale) state.petitionByLocale[cached.data.locale] = cached.data;
    } else {
      state.petitionByLocale = {};
    }
    const seen = await getSetting('count').catch(() => null);
    state.count = seen && seen.slug === event.petition ? seen : null;
    const tally = await getSetting('tally').catch(() => null);
    if (tally && tally.event_id === device.event_id && Number.isInteger(tally.value)) {
      $('tally').textContent = number(tally.value);
    }
    $('taken').textContent = number(state.taken);
    applyLanguage(state.homeLanguage);
    resetForm();
    await refreshStoreCounts();

    if (!state.started) {
      state.started = true;
      $('sign-form').addEventListener('submit', onSign);
      $('is_organization').addEventListener('change', onOrganizationToggle);
      $('language').addEventListener('change', onLanguageChosen);
      $('cancel-correction').addEventListener('click', () => resetForm());
      $('thanks').addEventListener('click', hideThanks);
      $('unlock').addEventListener('click', unlock);
      $('open-panel').addEventListener('click', openPanel);
      $('rejected').addEventListener('click', openPanel);
      $('panel-close').addEventListener('click', () => $('panel').close());
      $('home-language').addEventListener('change', onHomeLanguage);
      $('unenroll').addEventListener('click', unenroll);
      for (const kind of ['input', 'change', 'pointerdown', 'keydown']) {
        document.addEventListener(kind, touched, { capture: true, passive: true });
      }
      window.addEventListener('online', onOnline);
      window.addEventListener('offline', updateOnline);
      document.addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'visible') {
          requestSync('visible');
          refreshTally();
        }
      });
      setInterval(() => requestSync('timer'), SYNC_EVERY_MS);
      setInterval(refreshTally, TALLY_EVERY_MS);
      setInterval(refreshPetition, PETITION_EVERY_MS);
      // Refused signatures are forgotten after a week even on a page never reloaded.
      setInterval(() => forgetOldRejected().then(refreshStoreCounts).catch(() => null), FORGET_EVERY_MS);
    }
    touched();
    refreshPetition();
    refreshTally();
    requestSync('start');
  }

  function onOnline() {
    // What failed before may work now.
    state.reachable = null;
    updateOnline();
    requestSync('online');
    refreshTally();
    if (!state.petition) refreshPetition();
  }

  // The countries, named in the current language, in its order.
  function buildCountries() {
    const select = $('country');
    const chosen = select.value;
    select.replaceChildren();
    let names = null;
    try {
      names = new Intl.DisplayNames([state.language, 'en'], { type: 'region' });
    } catch (_) {
      names = null;
    }
    const nameOf = (code) => {
      try {
        return (names && names.of(code)) || code;
      } catch (_) {
        return code;
      }
    };
    let collator;
    try {
      collator = new Intl.Collator(state.language);
    } catch (_) {
      collator = new Intl.Collator('en');
    }
    const items = COUNTRIES.map((code) => ({ code, name: nameOf(code) }))
      .sort((a, b) => collator.compare(a.name, b.name));
    const placeholder = document.createElement('option');
    placeholder.value = '';
    placeholder.textContent = t('choose_country');
    select.append(placeholder);
    for (const { code, name } of items) {
      const option = document.createElement('option');
      option.value = code;
      option.textContent = name === code ? code : `${name} (${code})`;
      select.append(option);
    }
    select.value = chosen;
  }

  function defaultCountry() {
    const c = state.device && state.device.event && state.device.event.country;
    const code = typeof c === 'string' ? c.trim().toUpperCase() : '';
    return COUNTRY_SET.has(code) ? code : '';
  }

  // The petition as worded in `language`, else in its own default, else any.
  function petitionFor(language) {
    const all = Object.values(state.petitionByLocale);
    if (all.length === 0) return null;
    return all.find((p) => String(p.locale).split(/[-_]/)[0].toLowerCase() === language) ||
      all.find((p) => p.locale === p.default_locale) || all[0];
  }

  function renderPetition(p) {
    const valid = p && typeof p === 'object' && typeof p.title === 'string';
    state.petition = valid ? p : null;
    const article = document.querySelector('.petition');
    if (valid) {
      $('petition-title').textContent = p.title;
      $('petition-ask').textContent = typeof p.ask === 'string' ? p.ask : '';
      $('petition-text').textContent = typeof p.text === 'string' ? p.text : '';
      $('petition-missing').hidden = true;
      // The petition's words keep their own language (and direction).
      article.lang = typeof p.locale === 'string' ? p.locale : '';
      document.title = p.title;
    } else {
      const event = (state.device && state.device.event) || {};
      $('petition-title').textContent = typeof event.name === 'string' ? event.name : t('sign_heading');
      article.removeAttribute('lang');
      $('petition-missing').hidden = false;
      document.title = t('sign_heading');
    }
    $('lock-title').textContent = $('petition-title').textContent;
    applyRules(state.petition);
  }

  function applyRules(p) {
    const required = new Set(p && Array.isArray(p.required_fields) ? p.required_fields : []);
    const rules = {
      postal: required.has('postal_code'),
      city: required.has('city'),
      emailOptional: Boolean(p && p.email_optional_offline === true),
      orgs: Boolean(p && p.organizations_may_sign === true),
    };
    state.rules = rules;

    $('email').required = !rules.emailOptional;
    $('email-optional').hidden = !rules.emailOptional;
    $('email-hint').hidden = !rules.emailOptional;

    $('postal_code').required = rules.postal;
    const postalNote = $('postal-optional');
    postalNote.hidden = rules.postal;
    postalNote.dataset.t = rules.emailOptional ? 'required_without_email' : 'optional';
    postalNote.textContent = t(postalNote.dataset.t);

    $('city').required = rules.city;
    $('city-optional').hidden = rules.city;

    $('organization-block').hidden = !rules.orgs;
    if (!rules.orgs) {
      $('is_organization').checked = false;
      $('organization').value = '';
      $('organization-field').hidden = true;
    }
  }

  function onOrganizationToggle() {
    const on = $('is_organization').checked;
    $('organization-field').hidden = !on;
    $('organization').required = on;
    if (!on) $('organization').value = '';
  }

  // ---------------------------------------------------------------- the lock

  // Any touch or key keeps the form; a minute without one locks it.
  function touched() {
    clearTimeout(state.idleTimer);
    if (!state.device || $('sign-screen').hidden || !$('lock').hidden) return;
    state.idleTimer = setTimeout(lock, IDLE_LOCK_MS);
  }

  // Hides what the last signer typed (and the volunteers' panel) from the next.
  function lock() {
    clearTimeout(state.idleTimer);
    if ($('pin-dialog').open) $('pin-dialog').close();
    if ($('panel').open) $('panel').close();
    hideThanks();
    resetForm();
    applyLanguage(state.homeLanguage);
    $('lock').hidden = false;
    // Behind the lock, nothing is reachable, by touch or by a screen reader.
    for (const el of document.querySelectorAll('.status-bar, .sign-layout')) el.inert = true;
    $('unlock').focus();
    maybeTakeUpdate();
  }

  function unlock() {
    $('lock').hidden = true;
    for (const el of document.querySelectorAll('.status-bar, .sign-layout')) el.inert = false;
    touched();
    $('full_name').focus();
  }

  // ----------------------------------------------------------------- signing

  const FIELD_IDS = ['full_name', 'email', 'country', 'postal_code', 'city', 'organization'];

  function clearErrors() {
    $('sign-error').hidden = true;
    for (const id of FIELD_IDS) $(id).removeAttribute('aria-invalid');
  }

  function resetForm() {
    $('sign-form').reset();
    $('language').value = state.language;
    $('country').value = defaultCountry();
    $('organization-field').hidden = true;
    $('organization').required = false;
    state.correcting = null;
    renderCorrecting();
    clearErrors();
  }

  function readForm() {
    const org = state.rules.orgs && $('is_organization').checked;
    return {
      full_name: $('full_name').value.trim(),
      email: $('email').value.trim(),
      country: $('country').value.trim().toUpperCase(),
      postal_code: $('postal_code').value.trim(),
      city: $('city').value.trim(),
      organization: org ? $('organization').value.trim() : '',
      isOrganization: org,
      consent_updates: $('consent_updates').checked,
    };
  }

  // Light checks only: the service has the last word.
  function validate(v) {
    const rules = state.rules;
    const problems = [];
    const add = (field, key) => problems.push({ field, message: t(key) });
    if (!v.full_name) add('full_name', 'need_name');
    if (v.email && !EMAIL_SHAPE.test(v.email)) {
      add('email', 'email_shape');
    } else if (!v.email && !rules.emailOptional) {
      add('email', 'need_email');
    }
    if (!v.country) {
      add('country', 'need_country');
    } else if (!COUNTRY_SET.has(v.country)) {
      add('country', 'country_from_list');
    }
    if (v.postal_code && !POSTAL_SHAPE.test(v.postal_code.replace(/\s+/g, ' '))) {
      add('postal_code', 'postal_shape');
    } else if (!v.postal_code && rules.postal) {
      add('postal_code', 'need_postal');
    } else if (!v.postal_code && !v.email && rules.emailOptional) {
      add('postal_code', 'postal_without_email');
    }
    if (!v.city && rules.city) add('city', 'need_city');
    if (v.isOrganization && !v.organization) add('organization', 'need_organization');
    return problems;
  }

  function buildRecord(v) {
    const record = {
      id: uuid(),
      signed_at: new Date(Date.now() + state.clockOffsetMs).toISOString(),
      full_name: v.full_name,
    };
    if (v.email) record.email = v.email;
    record.country = v.country.toUpperCase();
    if (v.postal_code) record.postal_code = v.postal_code;
    if (v.city) record.city = v.city;
    record.consent_updates = v.consent_updates;
    record.signer_kind = v.isOrganization ? 'organization' : 'person';
    if (v.isOrganization && v.organization) record.organization = v.organization;
    // The language the signer chose on the form.
    if (acceptableLocale(state.language)) record.locale = state.language;
    return record;
  }

  async function onSign(ev) {
    ev.preventDefault();
    if (state.saving || state.revoked) return;
    clearErrors();
    const values = readForm();
    const problems = validate(values);
    if (problems.length > 0) {
      for (const p of problems) $(p.field).setAttribute('aria-invalid', 'true');
      show($('sign-error'), problems.map((p) => p.message).join(' '));
      $(problems[0].field).focus();
      return;
    }
    // A corrected signature is signed anew (a new id, now), and leaves the
    // refused list in the same transaction.
    const record = buildRecord(values);
    const corrected = state.correcting;
    state.saving = true;
    $('sign').disabled = true;
    try {
      // Stored (and committed) before anything else happens to it.
      await transact(['outbox', 'rejected', 'settings'], 'readwrite', (tx) => {
        tx.objectStore('outbox').add(record);
        if (corrected) {
          tx.objectStore('rejected').delete(corrected.id);
        } else {
          tx.objectStore('settings').put({ event_id: state.device.event_id, value: state.taken + 1 }, 'taken');
        }
      });
    } catch (_) {
      show($('sign-error'), t('save_failed'));
      return;
    } finally {
      state.saving = false;
      $('sign').disabled = state.revoked;
    }
    if (!corrected) state.taken += 1;
    $('taken').textContent = number(state.taken);
    if (document.activeElement && typeof document.activeElement.blur === 'function') {
      document.activeElement.blur();
    }
    // The next passer-by starts at the top, in the tablet's language once
    // this signer has been thanked in theirs.
    state.correcting = null;
    resetForm();
    window.scrollTo(0, 0);
    showThanks();
    await refreshStoreCounts();
    requestSync('signature');
  }

  function showThanks() {
    $('thanks').hidden = false;
    clearTimeout(state.thanksTimer);
    state.thanksTimer = setTimeout(hideThanks, THANKS_MS);
  }

  function hideThanks() {
    clearTimeout(state.thanksTimer);
    const shown = !$('thanks').hidden;
    $('thanks').hidden = true;
    if (shown && state.device) applyLanguage(state.homeLanguage);
    maybeTakeUpdate();
  }

  async function refreshStoreCounts() {
    try {
      const [waiting, rejected] = await Promise.all([countStore('outbox'), countStore('rejected')]);
      $('waiting').textContent = number(waiting);
      $('rejected-count').textContent = number(rejected);
      $('rejected').hidden = rejected === 0;
      state.waiting = waiting;
      state.refused = rejected;
    } catch (_) {
      // the last numbers shown stay
    }
    maybeTakeUpdate();
  }

  // -------------------------------------------------------- petition & tally

  function slugPath() {
    return `/v1/petitions/${encodeURIComponent(state.device.event.petition)}`;
  }

  async function fetchJson(path) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-cache' });
    } catch (_) {
      setReachable(false);
      return null;
    }
    setReachable(true);
    learnClock(res);
    if (!res.ok) return null;
    return readProblem(res);
  }

  // The petition in each language it is written in, kept for offline reloads.
  async function refreshPetition() {
    if (!state.device || state.petitionBusy || isOffline()) return;
    state.petitionBusy = true;
    try {
      const first = await fetchJson(slugPath());
      if (!first || typeof first.title !== 'string') return; // the cached copy, if any, stays
      const byLocale = { [first.locale]: first };
      const others = Array.isArray(first.locales) ? first.locales.filter((l) => l !== first.locale) : [];
      for (const locale of others) {
        const p = await fetchJson(`${slugPath()}?locale=${encodeURIComponent(locale)}`);
        if (p && typeof p.title === 'string' && p.locale === locale) byLocale[locale] = p;
      }
      state.petitionByLocale = byLocale;
      renderPetition(petitionFor(state.language));
      if (first.goal !== undefined) {
        state.count = { ...(state.count || {}), slug: state.device.event.petition, goal: first.goal, count: first.count };
        renderProgress();
      }
      try {
        await putSetting('petition', { slug: state.device.event.petition, by_locale: byLocale, fetched_at: Date.now() });
      } catch (_) {
        // shown now; not kept for an offline reload
      }
    } finally {
      state.petitionBusy = false;
    }
  }

  // The petition's count toward its goal, as last seen.
  function renderProgress() {
    const seen = state.count;
    const block = $('progress-block');
    if (!seen || !Number.isInteger(seen.count)) {
      block.hidden = true;
      return;
    }
    block.hidden = false;
    const goal = Number.isInteger(seen.goal) && seen.goal > 0 ? seen.goal : null;
    const bar = $('progress');
    bar.hidden = goal === null;
    if (goal !== null) {
      bar.max = goal;
      bar.value = Math.min(seen.count, goal);
      $('progress-text').textContent = t('petition_progress', { count: number(seen.count), goal: number(goal) });
    } else {
      $('progress-text').textContent = t('petition_count', { count: number(seen.count) });
    }
  }

  async function refreshTally() {
    if (!state.device || state.tallyBusy || isOffline()) return;
    state.tallyBusy = true;
    try {
      const body = await fetchJson(`${slugPath()}/count`);
      if (!body || !body.by_event || typeof body.by_event !== 'object') return;
      const raw = body.by_event[state.device.event_id];
      const value = raw === undefined || raw === null ? 0 : Number(raw);
      if (!Number.isInteger(value) || value < 0) return;
      $('tally').textContent = number(value);
      if (Number.isInteger(body.count)) {
        state.count = { slug: state.device.event.petition, count: body.count, goal: body.goal };
        renderProgress();
      }
      try {
        await putSetting('tally', { event_id: state.device.event_id, value });
        if (state.count) await putSetting('count', state.count);
      } catch (_) {
        // shown, not kept
      }
    } finally {
      state.tallyBusy = false;
    }
  }

  // -------------------------------------------------------------------- sync

  function requestSync(reason) {
    if (!state.device || state.revoked) return;
    if (state.syncing) {
      state.syncAgain = true;
      return;
    }
    if (reason === 'online' && state.failureKind === 'network') {
      state.retryAt = 0;
    }
    if (Date.now() < state.retryAt) return;
    if (isOffline()) {
      updateOnline();
      return;
    }
    runSync();
  }

  async function runSync() {
    state.syncing = true;
    try {
      if (navigator.locks && typeof navigator.locks.request === 'function') {
        // One sync at a time, across tabs too.
        await navigator.locks.request('undersigned-kiosk-sync', { ifAvailable: true }, async (lock) => {
          if (lock) await syncLoop();
        });
      } else {
        await syncLoop();
      }
    } catch (_) {
      scheduleRetry('error', null);
    } finally {
      state.syncing = false;
      await refreshStoreCounts();
      if (state.syncAgain) {
        state.syncAgain = false;
        setTimeout(() => requestSync('again'), 0);
      }
    }
  }

  async function syncLoop() {
    let sent = false;
    for (;;) {
      if (state.revoked) return;
      if (isOffline()) {
        updateOnline();
        return; // the `online` event brings the next try
      }
      const batch = await readOutbox(state.batchMax);
      if (batch.length === 0) break;
      const outcome = await sendBatch(batch);
      if (outcome === 'stop') return;
      if (outcome === 'progress') sent = true;
    }
    syncSucceeded();
    if (sent) {
      refreshTally();
      // The count may trail the acceptance by a moment.
      setTimeout(refreshTally, 2_000);
    }
  }

  // 'progress' (some items settled), 'again' (retry at once, smaller) or 'stop'.
  async function sendBatch(batch) {
    const { token, event_id: eventId } = state.device;
    let res;
    try {
      res = await fetch(`/v1/events/${encodeURIComponent(eventId)}/signatures:batch`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json',
        },
        body: JSON.stringify({ signatures: batch }),
        cache: 'no-store',
      });
    } catch (_) {
      setReachable(false);
      scheduleRetry('network', null);
      return 'stop';
    }
    setReachable(true);
    learnClock(res);

    if (res.status === 401) {
      await res.arrayBuffer().catch(() => null);
      revoke();
      return 'stop';
    }
    if (res.status === 413 && state.batchMax > 1) {
      await res.arrayBuffer().catch(() => null);
      state.batchMax = Math.max(1, Math.floor(batch.length / 2));
      return 'again';
    }
    if (res.status === 429 || res.status === 408 || res.status >= 500) {
      await res.arrayBuffer().catch(() => null);
      show($('sync-error'), res.status === 429 ? t('sync_slow_down') : t('sync_server'));
      scheduleRetry('server', retryAfterMs(res));
      return 'stop';
    }
    if (!res.ok) {
      // A refusal that waiting will hardly mend: keep everything, say so, retry slowly.
      const problem = await readProblem(res);
      show($('sync-error'), t('sync_refused', { reason: problemText(problem, res.status) }));
      scheduleRetry('refused', retryAfterMs(res));
      return 'stop';
    }

    const body = await readProblem(res);
    const results = body && Array.isArray(body.results) ? body.results : null;
    if (!results) {
      scheduleRetry('server', null);
      return 'stop';
    }
    const byId = new Map();
    for (const r of results) {
      if (r && typeof r.id === 'string') byId.set(r.id.toLowerCase(), r);
    }
    const settled = [];
    const rejected = [];
    const now = new Date().toISOString();
    batch.forEach((record, i) => {
      let r = byId.get(String(record.id).toLowerCase());
      if (!r && results.length === batch.length && results[i] && results[i].id === undefined) {
        r = results[i];
      }
      if (!r) return; // not answered for: stays, sent again
      if (r.status === 'accepted') {
        settled.push(record.id);
      } else if (r.status === 'invalid' || r.status === 'duplicate') {
        // A duplicate is a signer who had signed before, as another
        // signature (a resend of this one is `accepted`): the volunteer
        // may fix a mistyped address with them, or let it go.
        rejected.push({
          id: record.id,
          record,
          errors: r.status === 'duplicate'
            ? [{ field: 'signature', code: 'already_signed' }]
            : (Array.isArray(r.errors) ? r.errors : []),
          rejected_at: now,
        });
      }
    });
    if (settled.length === 0 && rejected.length === 0) {
      scheduleRetry('server', null);
      return 'stop';
    }
    await transact(['outbox', 'rejected'], 'readwrite', (tx) => {
      const outbox = tx.objectStore('outbox');
      const kept = tx.objectStore('rejected');
      for (const item of rejected) {
        kept.put(item);
        outbox.delete(item.id);
      }
      for (const id of settled) outbox.delete(id);
    });
    await refreshStoreCounts();
    return 'progress';
  }

  function syncSucceeded() {
    state.backoffMs = 0;
    state.retryAt = 0;
    state.failureKind = null;
    clearTimeout(state.retryTimer);
    $('sync-error').hidden = true;
  }

  function scheduleRetry(kind, afterMs) {
    state.failureKind = kind;
    let delay;
    if (afterMs !== null && afterMs !== undefined) {
      delay = afterMs;
    } else if (kind === 'refused') {
      delay = BACKOFF_MAX_MS;
    } else {
      state.backoffMs = state.backoffMs
        ? Math.min(state.backoffMs * 2, BACKOFF_MAX_MS)
        : BACKOFF_MIN_MS;
      delay = state.backoffMs;
    }
    state.retryAt = Date.now() + delay;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => requestSync('retry'), delay + 50);
  }

  function revoke() {
    state.revoked = true;
    clearTimeout(state.retryTimer);
    $('sync-error').hidden = true;
    $('revoked').hidden = false;
    // What is signed here now could never be sent: no more signing.
    for (const control of $('sign-form').elements) control.disabled = true;
  }

  // ------------------------------------------------------ the volunteers' panel

  async function openPanel() {
    if (!(await askPin())) return;
    touched();
    const device = state.device || {};
    $('settings-label').textContent = device.label || '';
    const event = device.event || {};
    $('settings-event').textContent = [event.name, event.place].filter((x) => typeof x === 'string' && x).join(' · ');
    $('home-language').value = state.homeLanguage;
    $('unenroll-error').hidden = true;
    await renderRefused();
    $('panel').showModal();
  }

  const readRefused = () =>
    transact(['rejected'], 'readonly', (tx) => tx.objectStore('rejected').getAll());

  // Field names as the form labels them.
  const FIELD_WORDS = {
    full_name: 'full_name', email: 'email', country: 'country', postal_code: 'postal_code',
    city: 'city', organization: 'organization',
  };
  const CODE_WORDS = {
    required: 'field_required', invalid: 'field_invalid', too_long: 'field_too_long',
    undeliverable: 'email_undeliverable',
  };

  // Why the service refused a signature, in the volunteer's words.
  function reasons(item) {
    const out = [];
    for (const e of item.errors.length > 0 ? item.errors : [{ field: 'signature', code: 'refused' }]) {
      const field = e && typeof e.field === 'string' ? e.field : 'signature';
      const code = e && typeof e.code === 'string' ? e.code : 'refused';
      if (code === 'already_signed') {
        out.push(t('reason_duplicate'));
      } else if (code === 'blocked') {
        out.push(t('reason_blocked'));
      } else if (field === 'signed_at' && code === 'petition_not_open') {
        out.push(t('reason_not_open'));
      } else if (field === 'signed_at') {
        out.push(t('reason_outside_event'));
      } else {
        // A form field says what the signer can mend; anything else, its code.
        if (FIELD_WORDS[field]) {
          out.push(`${t(FIELD_WORDS[field])}: ${t(CODE_WORDS[code] || 'field_invalid')}`);
        } else {
          out.push(t('reason_other', { code: `${field}: ${code}` }));
        }
      }
    }
    return out;
  }

  async function renderRefused() {
    let items = [];
    try {
      items = await readRefused();
    } catch (_) {
      items = [];
    }
    items.sort((a, b) => String(a.rejected_at).localeCompare(String(b.rejected_at)));
    const list = $('refused-list');
    list.replaceChildren();
    $('refused-none').hidden = items.length > 0;
    for (const item of items) {
      const r = item.record || {};
      const li = document.createElement('li');
      const who = document.createElement('p');
      who.className = 'refused-who';
      who.dir = 'auto';
      who.textContent = r.full_name || '';
      const fields = document.createElement('ul');
      fields.className = 'refused-fields';
      for (const key of ['email', 'country', 'postal_code', 'city', 'organization']) {
        if (!r[key]) continue;
        const line = document.createElement('li');
        line.dir = 'auto';
        line.textContent = `${t(key)}: ${r[key]}`;
        fields.append(line);
      }
      const why = document.createElement('ul');
      why.className = 'refused-reasons';
      for (const text of reasons(item)) {
        const line = document.createElement('li');
        line.textContent = text;
        why.append(line);
      }
      const actions = document.createElement('div');
      actions.className = 'form-actions';
      const correct = document.createElement('button');
      correct.type = 'button';
      correct.className = 'primary';
      correct.textContent = t('correct');
      correct.addEventListener('click', () => startCorrecting(item));
      const discard = document.createElement('button');
      discard.type = 'button';
      discard.className = 'quiet';
      discard.textContent = t('discard');
      discard.addEventListener('click', async () => {
        if (!window.confirm(t('discard_confirm'))) return;
        await transact(['rejected'], 'readwrite', (tx) => {
          tx.objectStore('rejected').delete(item.id);
        }).catch(() => null);
        await refreshStoreCounts();
        await renderRefused();
      });
      actions.append(correct, discard);
      li.append(who, fields, why, actions);
      list.append(li);
    }
  }

  // The refused signature on the form, for the signer to correct and sign again.
  function startCorrecting(item) {
    $('panel').close();
    unlock();
    resetForm();
    const r = item.record || {};
    if (r.locale && LANGUAGES.includes(languageOf(r.locale))) applyLanguage(languageOf(r.locale));
    $('full_name').value = r.full_name || '';
    $('email').value = r.email || '';
    $('country').value = COUNTRY_SET.has(r.country) ? r.country : '';
    $('postal_code').value = r.postal_code || '';
    $('city').value = r.city || '';
    $('consent_updates').checked = r.consent_updates === true;
    if (state.rules.orgs && r.signer_kind === 'organization') {
      $('is_organization').checked = true;
      onOrganizationToggle();
      $('organization').value = r.organization || '';
    }
    state.correcting = item;
    renderCorrecting();
    for (const e of item.errors) {
      if (e && FIELD_WORDS[e.field]) $(e.field).setAttribute('aria-invalid', 'true');
    }
    touched();
    $('full_name').focus();
  }

  function renderCorrecting() {
    const item = state.correcting;
    $('correcting').hidden = !item;
    $('cancel-correction').hidden = !item;
    $('sign').textContent = item ? t('resend') : t('submit');
    if (item) $('correcting').textContent = reasons(item).join(' ');
  }

  async function onHomeLanguage() {
    state.homeLanguage = languageOf($('home-language').value);
    await putSetting('home_language', state.homeLanguage).catch(() => null);
    applyLanguage(state.homeLanguage);
  }

  // Forgets the enrollment, never a signature: not while one waits or is
  // refused and unresolved.
  async function unenroll() {
    await refreshStoreCounts();
    const left = (state.waiting || 0) + (state.refused || 0);
    // A revoked tablet can send nothing: it may enroll again, and what waits
    // on it is sent with its next enrollment (refused there if it does not
    // belong to that event, and then listed).
    if (left > 0 && !state.revoked) {
      show($('unenroll-error'), t('unenroll_waiting', { count: number(left) }));
      return;
    }
    if (!window.confirm(t('unenroll_confirm'))) return;
    await transact(['settings'], 'readwrite', (tx) => {
      const settings = tx.objectStore('settings');
      for (const key of ['device', 'pin', 'petition', 'tally', 'count', 'taken']) settings.delete(key);
    }).catch(() => null);
    $('panel').close();
    clearTimeout(state.idleTimer);
    state.device = null;
    state.pin = null;
    state.petitionByLocale = {};
    state.count = null;
    $('sign-screen').hidden = true;
    showEnroll();
  }

  // ------------------------------------------------------ the service worker

  function registerWorker() {
    if (!('serviceWorker' in navigator)) return;
    navigator.serviceWorker.register('sw.js', { scope: './' }).then((registration) => {
      const watch = (worker) => {
        if (!worker) return;
        worker.addEventListener('statechange', () => {
          if (worker.state === 'installed' && navigator.serviceWorker.controller) {
            state.updateReady = true;
            maybeTakeUpdate();
          }
        });
      };
      if (registration.waiting && navigator.serviceWorker.controller) {
        state.updateReady = true;
        maybeTakeUpdate();
      }
      setInterval(() => registration.update().catch(() => null), UPDATE_EVERY_MS);
      watch(registration.installing);
      registration.addEventListener('updatefound', () => watch(registration.installing));
    }).catch(() => {
      // Without the worker the kiosk still works, only not from a cold start offline.
    });
    let reloading = false;
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      // The first worker taking over changes nothing on the page; a new
      // release does, once it was let in.
      if (!state.tookUpdate || reloading) return;
      reloading = true;
      location.reload();
    });
  }

  // A new release takes over only when no signature waits on this tablet and
  // no one is signing: its signatures are never in the middle of a change.
  async function maybeTakeUpdate() {
    if (!state.updateReady || state.tookUpdate) return;
    $('update-waiting').hidden = false;
    // Counted, and none: an unknown count (before IndexedDB opened) is not zero.
    const idle = !state.saving && !state.syncing && !state.correcting && !state.enrolling &&
      state.waiting === 0 && (!state.device || !formHasInput());
    if (!idle) return;
    const registration = await navigator.serviceWorker.getRegistration('./').catch(() => null);
    if (!registration || !registration.waiting) return;
    state.tookUpdate = true;
    registration.waiting.postMessage({ type: 'take-over' });
  }

  function formHasInput() {
    return ['full_name', 'email', 'postal_code', 'city', 'organization']
      .some((id) => $(id).value.trim() !== '') ||
      $('consent_updates').checked || $('is_organization').checked;
  }

  // ---------------------------------------------------------------------- go

  function start() {
    boot().catch(() => {
      show($('loading'), t('start_failed'));
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
