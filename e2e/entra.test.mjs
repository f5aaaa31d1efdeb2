// Browser tests of rolegate against the dev IdP's Entra-shaped authorities (dev/idp/entra.mjs):
// sign-in through /organizations with auth.allowed_tenants, a foreign tenant refused, External ID
// (auth.issuer), the certificate client (auth.client_certificate.*), and get-token.mjs tokens of
// each kind on /api/notes. Needs the tenants / apitok / cert work in the rolegate binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { startStack, submitIdpLogin, shot, IDP_DIR } from './harness.mjs';
import { TENANT_ID } from '../dev/idp/users.mjs';
import { FABRIKAM_TENANT_ID, EXTERNAL_TENANT_ID } from '../dev/idp/entra.mjs';

let stack;
let port;
const home = () => `${stack.idpUrl}/${TENANT_ID}/v2.0`;
const orgsEnv = (idpUrl) => ({
  APP__AUTH__AUTHORITY: `${idpUrl}/organizations/v2.0`,
  APP__AUTH__ALLOWED_TENANTS: TENANT_ID,
});

before(async () => {
  stack = await startStack({ name: 'entra', rolegateEnv: orgsEnv });
  port = new URL(stack.idpUrl).port;
});

after(async () => {
  await stack?.stop();
});

async function withPage(fn) {
  const context = await stack.browser.newContext();
  try {
    return await fn(await context.newPage());
  } finally {
    await context.close();
  }
}

const path = (page) => new URL(page.url()).pathname;

/** /login -> #sign-in -> Entra-shaped login page -> callback; returns the callback response. */
async function entraSignIn(page, user, shotPrefix) {
  await page.goto(`${stack.appUrl}/login`);
  await page.locator('a#sign-in').click();
  await page.waitForURL((u) => u.pathname.endsWith('/oauth2/v2.0/authorize'));
  await shot(page, `${shotPrefix}-01-entra-login`);
  const callback = page.waitForResponse((r) => {
    const u = new URL(r.url());
    return u.origin === stack.appUrl && u.pathname === '/getAToken';
  });
  await submitIdpLogin(page, user);
  const response = await callback;
  await page.waitForLoadState('load');
  await shot(page, `${shotPrefix}-02-after-callback`);
  return response;
}

async function expectSignedOut(page) {
  await page.goto(`${stack.appUrl}/`);
  assert.equal(path(page), '/login', `no session expected, got ${page.url()}`);
}

test('home-tenant user signs in through /organizations (auth.allowed_tenants = [home tid])', async () => {
  await withPage(async (page) => {
    await page.goto(`${stack.appUrl}/login`);
    const href = new URL(await page.locator('a#sign-in').getAttribute('href'), stack.appUrl);
    assert.equal(href.origin + href.pathname, `${stack.idpUrl}/organizations/oauth2/v2.0/authorize`);
    const cb = await entraSignIn(page, 'alice', 'entra-orgs-alice');
    assert.ok(cb.status() >= 300 && cb.status() < 400, `callback status ${cb.status()}`);
    assert.equal(path(page), '/');
    assert.equal((await page.locator('#user-name').textContent()).trim(), 'Alice Admin');
    const me = await (await page.goto(`${stack.appUrl}/api/me`)).json();
    assert.equal(me.tid, TENANT_ID);
  });
});

test('mallory (fabrikam, DemoApp.Admin there) is refused with the tenant page', async () => {
  await withPage(async (page) => {
    const cb = await entraSignIn(page, 'mallory', 'entra-orgs-mallory');
    assert.ok(cb.status() >= 400 && cb.status() < 500, `callback status ${cb.status()}`);
    const text = await page.locator('body').textContent();
    assert.ok(text.includes(FABRIKAM_TENANT_ID), 'page names the tenant id');
    assert.ok(text.includes('auth.allowed_tenants'), 'page names the setting');
    await expectSignedOut(page);
    // The browser follows the redirect, so the final answer is the sign-in page (200): check
    // where it landed rather than the status.
    await page.goto(`${stack.appUrl}/admin`);
    assert.equal(path(page), '/login', `no admin page without a session, got ${page.url()}`);
    assert.equal(await page.locator('h1#admin').count(), 0);
  });
});

test('sign-in through the External ID-shaped authority (issuer host = tenant GUID, auth.issuer)', async () => {
  await stack.restartRolegate({
    APP__AUTH__AUTHORITY: `http://localhost:${port}/${EXTERNAL_TENANT_ID}/v2.0`,
    APP__AUTH__ISSUER: `http://${EXTERNAL_TENANT_ID}.localhost:${port}/${EXTERNAL_TENANT_ID}/v2.0`,
  });
  await withPage(async (page) => {
    const cb = await entraSignIn(page, 'bob', 'entra-external-bob');
    assert.ok(cb.status() >= 300 && cb.status() < 400, `callback status ${cb.status()}`);
    assert.equal(path(page), '/');
    const me = await (await page.goto(`${stack.appUrl}/api/me`)).json();
    assert.equal(me.tid, EXTERNAL_TENANT_ID);
  });
});

test('sign-in with the certificate client (private_key_jwt, no secret)', async () => {
  const dataDir = join(stack.workDir, 'idp');
  await stack.restartRolegate({
    APP__AUTH__AUTHORITY: home(),
    APP__AUTH__CLIENT_ID: 'rolegate-dev-cert',
    APP__AUTH__CLIENT_SECRET: '',
    APP__AUTH__CLIENT_CERTIFICATE__CERTIFICATE_FILE: join(dataDir, 'client-cert.pem'),
    APP__AUTH__CLIENT_CERTIFICATE__PRIVATE_KEY_FILE: join(dataDir, 'client-key.pem'),
    APP__AUTH__CLIENT_AUTH_METHOD: 'auto', // appsettings.Development.json pins post for the secret
  });
  await withPage(async (page) => {
    const cb = await entraSignIn(page, 'carol', 'entra-cert-carol');
    assert.ok(cb.status() >= 300 && cb.status() < 400, `callback status ${cb.status()}`);
    assert.equal(path(page), '/');
    assert.equal((await page.locator('#user-name').textContent()).trim(), 'Carol Reader');
  });
});

function getToken(...args) {
  const r = spawnSync(process.execPath, [join(IDP_DIR, 'get-token.mjs'), ...args], {
    env: { ...process.env, IDP_URL: stack.idpUrl, RP_PUBLIC_URL: stack.appUrl }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, `get-token ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

async function apiNotes(token) {
  const res = await fetch(`${stack.appUrl}/api/notes`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') || '', body: await res.text() };
}

test('get-token.mjs tokens of each kind on /api/notes', async () => {
  await stack.restartRolegate({ APP__AUTH__AUTHORITY: home() });
  const v2 = await apiNotes(getToken('alice', '--entra'));
  assert.equal(v2.status, 200, `v2 delegated: ${v2.body}`);
  const v1 = await apiNotes(getToken('alice', '--entra', '--v1'));
  assert.equal(v1.status, 200, `v1 delegated: ${v1.body}`);
  const app = await apiNotes(getToken('--app'));
  assert.equal(app.status, 200, `app-only DemoApp.Read: ${app.body}`);
  const norole = await apiNotes(getToken('--app-norole'));
  assert.ok([401, 403].includes(norole.status), `app-only without roles: ${norole.status} ${norole.body}`);
  for (const args of [['alice', '--entra', '--web', '--id-token'], ['alice', '--entra', '--id-token']]) {
    const id = await apiNotes(getToken(...args));
    assert.equal(id.status, 401, `ID token (${args.join(' ')}): ${id.status} ${id.body}`);
    assert.match(id.wwwAuthenticate, /^Bearer /);
    assert.match(id.wwwAuthenticate, /error="invalid_token"/);
  }
});
