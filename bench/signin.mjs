#!/usr/bin/env node
// Drives rolegate's real sign-in over plain HTTP (no browser), for bench/run.sh.
//
//   node bench/signin.mjs cookie <app-url> <user>
//       one full sign-in; prints the Cookie header value (`rolegate_session=...`)
//   node bench/signin.mjs time <app-url> <user> <n>
//       n sign-ins one after another; prints one JSON object with the per-step times (ms)
//   node bench/signin.mjs logins <app-url> <n> [concurrency]
//       n cookie-less `GET /login` (each one leaves a pre-sign-in session row)
//   node bench/signin.mjs signins <app-url> <user> <n> [concurrency]
//       n full sign-ins (each one leaves a signed-in session row)
//
// The flow: GET /login (rolegate, cookie jar) -> href of <a id="sign-in"> -> the IdP's authorize
// URL and its redirects -> its login form (fields login, password) -> redirects back to
// rolegate's /getAToken?code&state with rolegate's cookie -> 302 and a new rolegate_session.
// Only Node's built-in fetch; the cookie jar and entity decoding come from dev/idp/flow.mjs.

import { CookieJar, unescapeHtml } from '../dev/idp/flow.mjs';

const COOKIE_NAME = 'rolegate_session';

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

function fail(msg) {
  throw new Error(msg);
}

/** One full sign-in. Returns { cookie, loginMs, idpMs, callbackMs, idpHops }. */
async function signIn(app, user) {
  const appJar = new CookieJar();
  const idpJar = new CookieJar();

  // 1. rolegate's sign-in page.
  let t0 = process.hrtime.bigint();
  let res = await fetch(`${app}/login`, { redirect: 'manual' });
  const html = await res.text();
  const loginMs = ms(t0);
  if (res.status !== 200) fail(`GET /login: HTTP ${res.status}`);
  appJar.store(res);
  const href = /<a[^>]*\bid="sign-in"[^>]*\bhref="([^"]+)"/.exec(html)?.[1]
    ?? /<a[^>]*\bhref="([^"]+)"[^>]*\bid="sign-in"/.exec(html)?.[1];
  if (!href) fail('GET /login: no <a id="sign-in" href=...> in the page');
  if (!appJar.get(COOKIE_NAME)) fail(`GET /login: no ${COOKIE_NAME} cookie set`);

  // 2. The IdP: authorize -> interaction -> login form -> back to the redirect URI.
  let url = new URL(unescapeHtml(href), app).toString();
  let method = 'GET';
  let body;
  let idpMs = 0;
  let idpHops = 0;
  const appOrigin = new URL(app).origin;
  for (;;) {
    if (new URL(url).origin === appOrigin) break;
    if (idpHops > 12) fail('too many hops at the IdP');
    t0 = process.hrtime.bigint();
    res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: {
        cookie: idpJar.header(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
    });
    idpJar.store(res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      idpMs += ms(t0);
      idpHops += 1;
      url = new URL(location, url).toString();
      method = 'GET';
      body = undefined;
      continue;
    }
    const page = await res.text();
    idpMs += ms(t0);
    idpHops += 1;
    const action = /<form id="login-form" method="post" action="([^"]+)"/.exec(page)?.[1];
    if (res.status === 200 && action) {
      url = new URL(unescapeHtml(action), url).toString();
      method = 'POST';
      body = new URLSearchParams({ login: user, password: 'bench' }).toString();
      continue;
    }
    const text = page.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
    fail(`IdP ${new URL(url).pathname}: HTTP ${res.status}: ${text}`);
  }

  // 3. Back at rolegate's redirect path with rolegate's pre-sign-in cookie.
  const before = appJar.get(COOKIE_NAME);
  t0 = process.hrtime.bigint();
  res = await fetch(url, { redirect: 'manual', headers: { cookie: appJar.header() } });
  const cbBody = await res.text();
  const callbackMs = ms(t0);
  appJar.store(res);
  if (res.status !== 302) {
    const text = cbBody.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
    fail(`${new URL(url).pathname}: HTTP ${res.status} (expected 302): ${text}`);
  }
  const after = appJar.get(COOKIE_NAME);
  if (!after) fail(`${new URL(url).pathname}: no ${COOKIE_NAME} cookie after sign-in`);
  if (after === before) fail(`${new URL(url).pathname}: session id not rotated at sign-in`);
  return { cookie: `${COOKIE_NAME}=${after}`, loginMs, idpMs, callbackMs, idpHops };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function pool(n, concurrency, job) {
  let next = 0;
  let errors = 0;
  let firstError;
  const worker = async () => {
    while (next < n) {
      next += 1;
      try {
        await job();
      } catch (err) {
        errors += 1;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  if (errors) throw new Error(`${errors} of ${n} failed; first: ${firstError.message}`);
}

const [mode, appArg, ...rest] = process.argv.slice(2);
const app = (appArg || '').replace(/\/+$/, '');
try {
  if (!app) fail('usage: see the top of bench/signin.mjs');
  if (mode === 'cookie') {
    const { cookie } = await signIn(app, rest[0] || 'alice');
    console.log(cookie);
  } else if (mode === 'time') {
    const user = rest[0] || 'alice';
    const n = Number.parseInt(rest[1] || '20', 10);
    await signIn(app, user); // warm-up (connections, JWKS already cached after this)
    const runs = [];
    for (let i = 0; i < n; i += 1) runs.push(await signIn(app, user));
    const pick = (k) => runs.map((r) => r[k]);
    const own = runs.map((r) => r.loginMs + r.callbackMs);
    const total = runs.map((r) => r.loginMs + r.idpMs + r.callbackMs);
    console.log(JSON.stringify({
      n,
      login_ms: median(pick('loginMs')),
      callback_ms: median(pick('callbackMs')),
      rolegate_ms: median(own),
      idp_browser_ms: median(pick('idpMs')),
      idp_browser_hops: median(pick('idpHops')),
      total_ms: median(total),
      rolegate_ms_min: Math.min(...own),
      rolegate_ms_max: Math.max(...own),
    }));
  } else if (mode === 'logins') {
    const n = Number.parseInt(rest[0] || '10000', 10);
    const concurrency = Number.parseInt(rest[1] || '16', 10);
    await pool(n, concurrency, async () => {
      const res = await fetch(`${app}/login`, { redirect: 'manual' });
      await res.arrayBuffer();
      if (res.status !== 200) fail(`GET /login: HTTP ${res.status}`);
      if (!(res.headers.getSetCookie?.() ?? []).some((c) => c.startsWith(`${COOKIE_NAME}=`))) {
        fail('GET /login set no session cookie');
      }
    });
    console.log(n);
  } else if (mode === 'signins') {
    const user = rest[0] || 'alice';
    const n = Number.parseInt(rest[1] || '300', 10);
    const concurrency = Number.parseInt(rest[2] || '4', 10);
    await pool(n, concurrency, () => signIn(app, user));
    console.log(n);
  } else {
    fail(`unknown mode ${mode}; see the top of bench/signin.mjs`);
  }
} catch (err) {
  console.error(`signin.mjs: ${err.message}${err.cause ? ` (${err.cause.message || err.cause})` : ''}`);
  process.exit(1);
}
