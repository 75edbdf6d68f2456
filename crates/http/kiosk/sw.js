// The kiosk's service worker: keeps the page's own files so that a tablet
// loads the kiosk with no network, after a reload or a restart. Signatures and
// the petition's text are the page's (IndexedDB), never this worker's.
//
// The service writes in VERSION (a digest of every file below) and FILES; a
// release is a new worker with a new cache. It installs beside the old one
// and waits: the page tells it to take over once no signature is waiting to
// be sent and no one is signing (kiosk.js, `maybeTakeUpdate`).
'use strict';

const VERSION = /*VERSION*/'';
const FILES = /*FILES*/[];
const CACHE = `undersigned-kiosk-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // Past any HTTP cache, and from an instance of this very release (another
    // answers 404 and this install fails, to be tried again later).
    await cache.addAll(FILES.map((file) => new Request(`${file}?v=${VERSION}`, { cache: 'reload' })));
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('undersigned-kiosk-') && name !== CACHE) await caches.delete(name);
    }
    // The page that installed the first worker is kept by it from now on.
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'take-over') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  // The API goes to the network as it is: the page knows what to do offline.
  if (url.origin !== self.location.origin || !url.pathname.startsWith('/kiosk/')) return;
  if (url.pathname.endsWith('/sw.js')) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    // Kept under `?v=…`, found under any query (`#enroll=…` never reaches here).
    const kept = request.mode === 'navigate'
      ? await cache.match('./', { ignoreSearch: true })
      : await cache.match(request, { ignoreSearch: true });
    return kept || fetch(request);
  })());
});
