// The kiosk: a tablet at a street event that many passers-by sign on in turn,
// often offline. Every signature is stored in IndexedDB first and sent later,
// in batches, with the tablet's device token.
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
  const BACKOFF_MIN_MS = 2_000;
  const BACKOFF_MAX_MS = 60_000;
  const RETRY_AFTER_MAX_MS = 60 * 60_000;
  // A half-filled form left alone this long is cleared for the next person.
  const IDLE_CLEAR_MS = 120_000;

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
    clockOffsetMs: 0, // what to add to this tablet's clock to get the service's
  };

  const $ = (id) => document.getElementById(id);

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
    el.textContent = on ? 'online' : 'offline';
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
    if (!problem) return `The server answered ${status}.`;
    const title = typeof problem.title === 'string' ? problem.title : '';
    const detail = typeof problem.detail === 'string' ? problem.detail : '';
    if (title && detail && detail !== title) return `${title}: ${detail}`;
    return title || detail || `The server answered ${status}.`;
  }

  function show(el, text) {
    el.textContent = text;
    el.hidden = false;
  }

  // ---------------------------------------------------------------- start-up

  async function boot() {
    try {
      state.db = await openDb();
    } catch (_) {
      show($('loading'), 'This browser cannot keep signatures (IndexedDB is unavailable). ' +
        'Please use a normal, non-private browser window.');
      return;
    }
    let device = null;
    try {
      device = await getSetting('device');
    } catch (_) {
      device = null;
    }
    try {
      state.clockOffsetMs = Number(await getSetting('clock_offset_ms')) || 0;
    } catch (_) {
      state.clockOffsetMs = 0;
    }
    await forgetOldRejected().catch(() => null);
    $('loading').hidden = true;
    if (device && device.token && device.event_id && device.event && device.event.petition) {
      await startSigning(device);
    } else {
      showEnroll();
    }
  }

  // -------------------------------------------------------------- enrollment

  function showEnroll() {
    $('sign-screen').hidden = true;
    $('enroll-screen').hidden = false;
    $('enroll-form').addEventListener('submit', onEnroll);
  }

  function enrollError(text, focusId) {
    show($('enroll-error'), text);
    if (focusId) $(focusId).focus();
  }

  async function onEnroll(ev) {
    ev.preventDefault();
    const button = $('enroll');
    if (button.disabled) return;
    $('enroll-error').hidden = true;
    const code = $('code').value.trim();
    const label = $('label').value.trim();
    if (!code) {
      enrollError('Please enter the enrollment code.', 'code');
      return;
    }
    if (!label) {
      enrollError('Please give this tablet a label, for example “Tablet 1”.', 'label');
      return;
    }
    if (isOffline()) {
      enrollError('This tablet is offline. Enrolling it needs a connection.');
      return;
    }
    button.disabled = true;
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
        enrollError('Could not reach the server. Check the connection and try again.');
        return;
      }
      if (res.status !== 201 && res.status !== 200) {
        const problem = await readProblem(res);
        const codeInvalid = problem && Array.isArray(problem.errors) &&
          problem.errors.some((e) => e && e.field === 'code');
        const text = codeInvalid
          ? 'This enrollment code is not valid: it is unknown, already used or expired.'
          : problemText(problem, res.status);
        enrollError(text, codeInvalid ? 'code' : null);
        return;
      }
      const body = await readProblem(res);
      const event = body && body.event;
      if (!body || typeof body.token !== 'string' || !body.event_id || !event ||
          typeof event.petition !== 'string') {
        enrollError('The server gave an unexpected answer to the enrollment.');
        return;
      }
      const device = {
        token: body.token,
        device_id: body.device_id,
        event_id: body.event_id,
        expires_at: body.expires_at,
        event,
      };
      try {
        await putSetting('device', device);
      } catch (_) {
        enrollError('This tablet could not store its enrollment. Is storage full or disabled?');
        return;
      }
      $('code').value = '';
      $('label').value = '';
      // Ask the browser not to evict the stored signatures under storage pressure.
      if (navigator.storage && typeof navigator.storage.persist === 'function') {
        navigator.storage.persist().catch(() => {});
      }
      $('enroll-form').removeEventListener('submit', onEnroll);
      $('enroll-screen').hidden = true;
      await startSigning(device);
    } finally {
      button.disabled = false;
    }
  }

  // ----------------------------------------------------------------- signing

  async function startSigning(device) {
    state.device = device;
    const event = device.event || {};
    $('enroll-screen').hidden = true;
    $('sign-screen').hidden = false;

    const where = [event.name, event.place].filter((s) => typeof s === 'string' && s).join(' · ');
    $('event-name').textContent = where;

    buildCountries();
    resetForm();

    let cached = null;
    try {
      cached = await getSetting('petition');
    } catch (_) {
      cached = null;
    }
    renderPetition(cached && cached.slug === event.petition ? cached.data : null);

    try {
      const tally = await getSetting('tally');
      if (tally && tally.event_id === device.event_id && Number.isInteger(tally.value)) {
        $('tally').textContent = String(tally.value);
      }
    } catch (_) {
      // shows 0 until the first count arrives
    }
    await refreshStoreCounts();
    updateOnline();

    if (!state.started) {
      state.started = true;
      $('sign-form').addEventListener('submit', onSign);
      $('sign-form').addEventListener('input', onFormInput);
      $('is_organization').addEventListener('change', onOrganizationToggle);
      $('thanks').addEventListener('click', hideThanks);
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
    }
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

  function buildCountries() {
    const select = $('country');
    if (select.options.length > 0) return;
    let names = null;
    try {
      names = new Intl.DisplayNames([navigator.language || 'en', 'en'], { type: 'region' });
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
    const collator = new Intl.Collator(navigator.language || 'en');
    const items = COUNTRIES.map((code) => ({ code, name: nameOf(code) }))
      .sort((a, b) => collator.compare(a.name, b.name));
    const placeholder = document.createElement('option');
    placeholder.value = '';
    placeholder.textContent = 'Choose your country…';
    select.append(placeholder);
    for (const { code, name } of items) {
      const option = document.createElement('option');
      option.value = code;
      option.textContent = name === code ? code : `${name} (${code})`;
      select.append(option);
    }
  }

  function defaultCountry() {
    const c = state.device && state.device.event && state.device.event.country;
    const code = typeof c === 'string' ? c.trim().toUpperCase() : '';
    return COUNTRY_SET.has(code) ? code : '';
  }

  function renderPetition(p) {
    const valid = p && typeof p === 'object' && typeof p.title === 'string';
    state.petition = valid ? p : null;
    if (valid) {
      $('petition-title').textContent = p.title;
      $('petition-ask').textContent = typeof p.ask === 'string' ? p.ask : '';
      $('petition-text').textContent = typeof p.text === 'string' ? p.text : '';
      $('petition-missing').hidden = true;
      document.title = p.title;
    } else {
      const event = (state.device && state.device.event) || {};
      $('petition-title').textContent = typeof event.name === 'string' ? event.name : 'Sign the petition';
      $('petition-missing').hidden = false;
    }
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
    if (rules.postal) {
      postalNote.hidden = true;
    } else {
      postalNote.hidden = false;
      postalNote.textContent = rules.emailOptional ? '(required without e-mail)' : '(optional)';
    }

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

  function onFormInput() {
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(() => {
      if (formHasInput()) resetForm();
    }, IDLE_CLEAR_MS);
  }

  function formHasInput() {
    return ['full_name', 'email', 'postal_code', 'city', 'organization']
      .some((id) => $(id).value.trim() !== '') ||
      $('consent_updates').checked || $('is_organization').checked;
  }

  const FIELD_IDS = ['full_name', 'email', 'country', 'postal_code', 'city', 'organization'];

  function clearErrors() {
    $('sign-error').hidden = true;
    for (const id of FIELD_IDS) $(id).removeAttribute('aria-invalid');
  }

  function resetForm() {
    clearTimeout(state.idleTimer);
    $('sign-form').reset();
    $('country').value = defaultCountry();
    $('organization-field').hidden = true;
    $('organization').required = false;
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
    const add = (field, message) => problems.push({ field, message });
    if (!v.full_name) add('full_name', 'Please enter your name.');
    if (v.email && !EMAIL_SHAPE.test(v.email)) {
      add('email', 'This e-mail address does not look right.');
    } else if (!v.email && !rules.emailOptional) {
      add('email', 'Please enter your e-mail address.');
    }
    if (!v.country) {
      add('country', 'Please choose your country.');
    } else if (!COUNTRY_SET.has(v.country)) {
      add('country', 'Please choose your country from the list.');
    }
    if (v.postal_code && !POSTAL_SHAPE.test(v.postal_code.replace(/\s+/g, ' '))) {
      add('postal_code', 'A postal code has only letters, digits, spaces and hyphens (16 at most).');
    } else if (!v.postal_code && rules.postal) {
      add('postal_code', 'Please enter your postal code.');
    } else if (!v.postal_code && !v.email && rules.emailOptional) {
      add('postal_code', 'Without an e-mail address, please give your postal code.');
    }
    if (!v.city && rules.city) add('city', 'Please enter your city.');
    if (v.isOrganization && !v.organization) {
      add('organization', 'Please enter the name of the organization.');
    }
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
    if (acceptableLocale(navigator.language)) record.locale = navigator.language;
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
    const record = buildRecord(values);
    state.saving = true;
    $('sign').disabled = true;
    try {
      // Stored (and committed) before anything else happens to it.
      await transact(['outbox'], 'readwrite', (tx) => {
        tx.objectStore('outbox').add(record);
      });
    } catch (_) {
      show($('sign-error'), 'This signature could not be saved on the tablet. ' +
        'Please try again, or tell a volunteer.');
      return;
    } finally {
      state.saving = false;
      $('sign').disabled = state.revoked;
    }
    if (document.activeElement && typeof document.activeElement.blur === 'function') {
      document.activeElement.blur();
    }
    resetForm();
    // The next passer-by starts at the top, with the petition in view.
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
    $('thanks').hidden = true;
  }

  async function refreshStoreCounts() {
    try {
      const [waiting, rejected] = await Promise.all([countStore('outbox'), countStore('rejected')]);
      $('waiting').textContent = String(waiting);
      $('rejected-count').textContent = String(rejected);
      $('rejected').hidden = rejected === 0;
    } catch (_) {
      // the last numbers shown stay
    }
  }

  // -------------------------------------------------------- petition & tally

  function slugPath() {
    return `/v1/petitions/${encodeURIComponent(state.device.event.petition)}`;
  }

  async function refreshPetition() {
    if (!state.device || state.petitionBusy || isOffline()) return;
    state.petitionBusy = true;
    try {
      let res;
      try {
        res = await fetch(slugPath(), { headers: { Accept: 'application/json' }, cache: 'no-cache' });
      } catch (_) {
        setReachable(false);
        return;
      }
      setReachable(true);
      learnClock(res);
      if (!res.ok) return; // the cached copy, if any, stays
      const p = await readProblem(res);
      if (!p || typeof p.title !== 'string') return;
      renderPetition(p);
      try {
        await putSetting('petition', { slug: state.device.event.petition, data: p, fetched_at: Date.now() });
      } catch (_) {
        // shown now; not kept for an offline reload
      }
    } finally {
      state.petitionBusy = false;
    }
  }

  async function refreshTally() {
    if (!state.device || state.tallyBusy || isOffline()) return;
    state.tallyBusy = true;
    try {
      let res;
      try {
        res = await fetch(`${slugPath()}/count`, { headers: { Accept: 'application/json' }, cache: 'no-cache' });
      } catch (_) {
        setReachable(false);
        return;
      }
      setReachable(true);
      learnClock(res);
      if (!res.ok) return;
      const body = await readProblem(res);
      if (!body || !body.by_event || typeof body.by_event !== 'object') return;
      const raw = body.by_event[state.device.event_id];
      const value = raw === undefined || raw === null ? 0 : Number(raw);
      if (!Number.isInteger(value) || value < 0) return;
      $('tally').textContent = String(value);
      try {
        await putSetting('tally', { event_id: state.device.event_id, value });
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
      show($('sync-error'), res.status === 429
        ? 'The server asked this tablet to slow down. Signatures stay here and are sent later.'
        : 'The server is not answering well. Signatures stay here and are sent later.');
      scheduleRetry('server', retryAfterMs(res));
      return 'stop';
    }
    if (!res.ok) {
      // A refusal that waiting will hardly mend: keep everything, say so, retry slowly.
      const problem = await readProblem(res);
      show($('sync-error'), `Sending failed (${problemText(problem, res.status)}). ` +
        'Signatures stay on this tablet; please tell an organizer.');
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
      if (r.status === 'accepted' || r.status === 'duplicate') {
        settled.push(record.id);
      } else if (r.status === 'invalid') {
        rejected.push({
          id: record.id,
          record,
          errors: Array.isArray(r.errors) ? r.errors : [],
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

  // ---------------------------------------------------------------------- go

  function start() {
    boot().catch(() => {
      show($('loading'), 'Something went wrong while starting. Please reload the page.');
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
