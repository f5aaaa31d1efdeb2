// Real-browser tests: headless Debian Chromium drives rolegate (the real binary) and the dev IdP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { startStack, signIn, submitIdpLogin, shot, IDP_DIR } from './harness.mjs';
import { USERS, TENANT_ID } from '../dev/idp/users.mjs';

let stack;
const user = (login) => USERS.find((u) => u.login === login);

before(async () => {
  stack = await startStack({ name: 'browser' });
});

after(async () => {
  await stack?.stop();
});

// A fresh browser profile state (cookies etc.) per test.
async function withContext(fn) {
  const context = await stack.browser.newContext();
  try {
    return await fn(context);
  } finally {
    await context.close();
  }
}

const path = (page) => new URL(page.url()).pathname;
const sessionCookie = async (context) => (await context.cookies(stack.appUrl)).find((c) => c.name === 'rolegate_session');

async function expectSignedOut(page, label) {
  const res = await page.goto(`${stack.appUrl}/`);
  await shot(page, `${label}-anonymous-home`);
  assert.equal(path(page), '/login', `GET / should end on /login, got ${page.url()} (HTTP ${res.status()})`);
  const next = new URL(page.url()).searchParams.get('next');
  assert.equal(next, '/');
}

test('anonymous GET / redirects to /login?next=/', async () => {
  const res = await fetch(`${stack.appUrl}/`, { redirect: 'manual' });
  assert.ok([302, 303].includes(res.status), `status ${res.status}`);
  const loc = new URL(res.headers.get('location'), stack.appUrl);
  assert.equal(loc.pathname, '/login');
  assert.equal(loc.searchParams.get('next'), '/');
});

test('login page links to the IdP authorization endpoint with state, nonce and PKCE S256', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    const res = await page.goto(`${stack.appUrl}/login`);
    assert.equal(res.status(), 200);
    await shot(page, 'login-page');
    const href = await page.locator('a#sign-in').getAttribute('href');
    const auth = new URL(href);
    assert.equal(`${auth.origin}${auth.pathname}`, `${stack.idpUrl}/auth`);
    const q = auth.searchParams;
    assert.equal(q.get('client_id'), 'rolegate-dev');
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('redirect_uri'), `${stack.appUrl}/getAToken`);
    assert.ok(q.get('scope').split(' ').includes('openid'));
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.ok(q.get('code_challenge'));
    assert.ok(q.get('state'));
    assert.ok(q.get('nonce'));
  });
});

for (const [login, level, roles] of [
  ['alice', 'Admin', ['DemoApp.Admin']],
  ['bob', 'Write', ['DemoApp.Write']],
  ['carol', 'Read', ['DemoApp.Read']],
]) {
  test(`${login} signs in through the IdP and sees name and access level ${level}`, async () => {
    await withContext(async (context) => {
      const page = await context.newPage();
      const cb = await signIn(stack, page, login);
      assert.ok(cb.status() >= 300 && cb.status() < 400, `callback status ${cb.status()}`);
      assert.equal(path(page), '/');
      await shot(page, `${login}-05-home`);
      assert.equal((await page.locator('#user-name').textContent()).trim(), user(login).name);
      assert.equal((await page.locator('#access-level').textContent()).trim(), level);
      const shown = (await page.locator('#roles li').allTextContents()).map((s) => s.trim());
      assert.deepEqual(shown, roles);
      // Sign out is a POST form carrying the session's CSRF token, not a link.
      const form = page.locator('form:has(#sign-out)');
      assert.equal(await form.getAttribute('action'), '/logout');
      assert.equal(await form.getAttribute('method'), 'post');
      assert.ok((await form.locator('input[name="csrf_token"]').getAttribute('value')).length >= 20, 'csrf_token in the form');

      const cookie = await sessionCookie(context);
      assert.ok(cookie, 'rolegate_session cookie set');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Lax');

      // /api/me with the browser session
      const me = await page.goto(`${stack.appUrl}/api/me`);
      assert.equal(me.status(), 200);
      const body = await me.json();
      assert.equal(body.sub, user(login).sub);
      assert.equal(body.name, user(login).name);
      assert.equal(body.preferred_username, `${login}@rolegate.dev`);
      assert.deepEqual(body.roles, roles);
      assert.equal(body.tid, TENANT_ID);
      assert.equal(body.oid, user(login).oid);
    });
  });
}

test('an unknown user name is refused on the IdP login form', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await page.goto(`${stack.appUrl}/login`);
    await page.locator('a#sign-in').click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
    await submitIdpLogin(page, 'mallory');
    await page.locator('#login-error').waitFor();
    await shot(page, 'unknown-user-refused');
    assert.ok(page.url().startsWith(`${stack.idpUrl}/interaction/`));
    assert.match(await page.locator('#login-error').textContent(), /mallory/);
    // rolegate may already have set its cookie for the pending sign-in; it must not be signed in.
    await expectSignedOut(page, 'unknown-user');
  });
});

test('alice (Admin) opens /admin', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await signIn(stack, page, 'alice', { shotPrefix: 'admin-alice' });
    const res = await page.goto(`${stack.appUrl}/admin`);
    await shot(page, 'admin-alice-05-admin');
    assert.equal(res.status(), 200);
    assert.equal(await page.locator('h1#admin').count(), 1);
  });
});

test('bob (Write) gets 403 on /admin naming DemoApp.Admin', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await signIn(stack, page, 'bob', { shotPrefix: 'admin-bob' });
    const res = await page.goto(`${stack.appUrl}/admin`);
    await shot(page, 'admin-bob-05-forbidden');
    assert.equal(res.status(), 403);
    assert.equal(await page.locator('#forbidden').count(), 1);
    // The page names the role needed (rolegate puts it next to #forbidden, in #needed-role).
    assert.match(await page.locator('body').innerText(), /DemoApp\.Admin/);
  });
});

for (const login of ['dave', 'erin']) {
  test(`${login} (${login === 'dave' ? 'empty roles' : 'no roles claim'}) is refused at sign-in, no session`, async () => {
    await withContext(async (context) => {
      const page = await context.newPage();
      const cb = await signIn(stack, page, login);
      assert.equal(cb.status(), 403);
      await shot(page, `${login}-05-refused`);
      const err = page.locator('#auth-error');
      assert.equal(await err.count(), 1);
      assert.equal(await err.getAttribute('data-reason'), 'no_role');
      await expectSignedOut(page, login);
      const me = await page.goto(`${stack.appUrl}/api/me`);
      assert.equal(me.status(), 401);
    });
  });
}

test('?next=/api/me is kept through sign-in', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await signIn(stack, page, 'carol', { next: '/api/me', shotPrefix: 'next-api' });
    assert.equal(path(page), '/api/me');
    const body = JSON.parse(await page.locator('body').textContent());
    assert.equal(body.name, 'Carol Reader');
  });
});

test('a guarded page visited anonymously comes back after sign-in (/admin)', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await page.goto(`${stack.appUrl}/admin`);
    assert.equal(path(page), '/login');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/admin');
    await page.locator('a#sign-in').click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
    await submitIdpLogin(page, 'alice');
    await page.waitForURL((u) => u.href.startsWith(`${stack.appUrl}/admin`));
    await shot(page, 'next-admin-landed');
    assert.equal(await page.locator('h1#admin').count(), 1);
  });
});

test('replaying the callback URL is refused and signs nobody in', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    const cb = await signIn(stack, page, 'carol', { shotPrefix: 'replay' });
    const callbackUrl = cb.url();
    assert.ok(new URL(callbackUrl).searchParams.get('state'));
    // Same browser: the pending sign-in was single-use.
    const again = await page.goto(callbackUrl);
    await shot(page, 'replay-05-same-browser');
    assert.ok(again.status() >= 400 && again.status() < 500, `replay status ${again.status()}`);
    assert.equal(await page.locator('#auth-error').count(), 1);
  });
  await withContext(async (context) => {
    // Another browser (no cookies) with a stolen callback URL.
    const page = await context.newPage();
    const cbAlice = await withContext(async (ctxA) => {
      const p = await ctxA.newPage();
      const login = await p.goto(`${stack.appUrl}/login`);
      assert.equal(login.status(), 200);
      await p.locator('a#sign-in').click();
      await p.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
      // Stop at the redirect back: do not let alice's browser use the code.
      await p.route(`${stack.appUrl}/getAToken**`, (route) => route.abort());
      const req = p.waitForRequest((r) => r.url().startsWith(`${stack.appUrl}/getAToken`));
      await submitIdpLogin(p, 'alice');
      return (await req).url();
    });
    const res = await page.goto(cbAlice);
    await shot(page, 'replay-06-other-browser');
    assert.ok(res.status() >= 400 && res.status() < 500, `stolen callback status ${res.status()}`);
    assert.equal(await page.locator('#auth-error').count(), 1);
    await expectSignedOut(page, 'replay-other');
  });
});

test('cancelling at the IdP (error=access_denied) shows an error page, no session', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await page.goto(`${stack.appUrl}/login`);
    await page.locator('a#sign-in').click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
    const callback = page.waitForResponse((r) => r.url().startsWith(`${stack.appUrl}/getAToken`));
    await page.locator('#cancel').click();
    const res = await callback;
    await page.waitForLoadState('load');
    await shot(page, 'cancel-05-error');
    assert.equal(new URL(res.url()).searchParams.get('error'), 'access_denied');
    assert.ok(res.status() >= 400 && res.status() < 600, `status ${res.status()}`);
    assert.equal(await page.locator('#auth-error').count(), 1);
    await expectSignedOut(page, 'cancel');
  });
});

test('a GET /logout (a link from another site) shows "Sign out?" and signs nobody out', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await signIn(stack, page, 'bob', { shotPrefix: 'logout-get' });
    const res = await page.goto(`${stack.appUrl}/logout`);
    await shot(page, 'logout-get-confirm');
    assert.equal(res.status(), 200);
    assert.match(await page.locator('h1').textContent(), /Sign out\?/);
    const home = await page.goto(`${stack.appUrl}/`);
    assert.equal(home.status(), 200, 'still signed in');
    assert.equal(path(page), '/');
    // The page's own button signs out.
    await page.goto(`${stack.appUrl}/logout`);
    await page.locator('#confirm-sign-out').click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.appUrl}/login`), { timeout: 15000 });
    assert.equal(await page.locator('#signed-out').count(), 1);
  });
});

test('logout ends the session via the IdP end_session endpoint', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await signIn(stack, page, 'alice', { shotPrefix: 'logout' });
    assert.equal(path(page), '/');

    const idpHits = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${stack.idpUrl}/session/end`)) idpHits.push(r.url());
    });
    await page.locator('#sign-out').click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.appUrl}/login`), { timeout: 15000 });
    await shot(page, 'logout-05-signed-out');
    assert.ok(idpHits.length >= 1, 'browser went through the IdP end_session endpoint');
    const endSession = new URL(idpHits[0]);
    assert.equal(endSession.searchParams.get('client_id') ?? 'rolegate-dev', 'rolegate-dev');
    assert.ok(endSession.searchParams.get('id_token_hint'), 'id_token_hint sent');
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${stack.appUrl}/login`);
    assert.equal(await page.locator('#signed-out').count(), 1);

    await expectSignedOut(page, 'logout');

    // The IdP session ended too: signing in again asks for the user name.
    await page.locator('a#sign-in').click();
    await page.waitForURL((u) => u.href.startsWith(stack.idpUrl) || u.href.startsWith(stack.appUrl));
    await shot(page, 'logout-06-sign-in-again');
    assert.ok(page.url().startsWith(`${stack.idpUrl}/interaction/`), `expected the IdP login form, got ${page.url()}`);
  });
});

test('two tabs start a sign-in; the first to finish signs in, the other is refused cleanly', async () => {
  await withContext(async (context) => {
    const a = await context.newPage();
    const b = await context.newPage();
    await a.goto(`${stack.appUrl}/login`);
    await b.goto(`${stack.appUrl}/login?next=${encodeURIComponent('/api/me')}`);
    // Both pending sign-ins exist before either completes.
    await a.locator('a#sign-in').click();
    await a.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
    await b.locator('a#sign-in').click();
    await b.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
    await shot(a, 'tabs-a-idp');
    await shot(b, 'tabs-b-idp');

    await submitIdpLogin(a, 'alice');
    await a.waitForURL((u) => u.href.startsWith(stack.appUrl));
    await a.waitForLoadState('load');
    await shot(a, 'tabs-a-done');
    assert.equal(path(a), '/', `tab A ended on ${a.url()}`);
    assert.equal((await a.locator('#user-name').textContent()).trim(), 'Alice Admin');

    // Sign-in starts a clean session: tab B's pending sign-in went with it, so its return is
    // refused as a stale link (400 state_mismatch), without touching tab A's session.
    const callback = b.waitForResponse((r) => new URL(r.url()).pathname === '/getAToken');
    await submitIdpLogin(b, 'alice');
    const refused = await callback;
    await b.waitForLoadState('load');
    await shot(b, 'tabs-b-done');
    assert.equal(refused.status(), 400, `tab B callback status ${refused.status()}`);
    assert.equal(await b.locator('[data-reason]').getAttribute('data-reason'), 'state_mismatch');

    // Still signed in in tab A after B was refused.
    await a.reload();
    assert.equal((await a.locator('#user-name').textContent()).trim(), 'Alice Admin');
  });
});

test('a session survives a rolegate restart (same port, DB and session key)', async () => {
  await withContext(async (context) => {
    const page = await context.newPage();
    await signIn(stack, page, 'bob', { shotPrefix: 'restart' });
    assert.equal((await page.locator('#user-name').textContent()).trim(), 'Bob Writer');
    await stack.restartRolegate();
    const res = await page.goto(`${stack.appUrl}/`);
    await shot(page, 'restart-05-after-restart');
    assert.equal(res.status(), 200);
    assert.equal(path(page), '/');
    assert.equal((await page.locator('#user-name').textContent()).trim(), 'Bob Writer');
  });
});

function getToken(login) {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [join(IDP_DIR, 'get-token.mjs'), login], {
      env: { ...process.env, IDP_URL: stack.idpUrl }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? ok(out.trim()) : fail(new Error(`get-token ${login}: ${err}`))));
  });
}

test('Bearer access token from get-token.mjs works on /api/me', async () => {
  const token = await getToken('alice');
  const res = await fetch(`${stack.appUrl}/api/me`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const body = JSON.parse(text);
  assert.equal(body.name, 'Alice Admin');
  assert.equal(body.preferred_username, 'alice@rolegate.dev');
  assert.deepEqual(body.roles, ['DemoApp.Admin']);
  assert.equal(body.tid, TENANT_ID);
  assert.equal(body.oid, user('alice').oid);
  assert.equal(body.sub, user('alice').sub);

  const anon = await fetch(`${stack.appUrl}/api/me`, { headers: { accept: 'application/json' } });
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('content-type') || '', /json/);
  await anon.json();

  const tampered = `${token.slice(0, -4)}AAAA`;
  const bad = await fetch(`${stack.appUrl}/api/me`, { headers: { authorization: `Bearer ${tampered}` } });
  assert.equal(bad.status, 401);
});
