// The dev IdP by itself (no browser, no rolegate): discovery, code flow + PKCE over HTTP for
// every test user, ID-token claims, the API access token, and key persistence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startIdp, stopProcess, LOG_DIR, IDP_DIR } from './harness.mjs';
import { decodeJwt, verifyRs256 } from './jwt.mjs';
import { codeFlow } from '../dev/idp/flow.mjs';
import { USERS, TENANT_ID } from '../dev/idp/users.mjs';

const RP = 'http://127.0.0.1:8765'; // nothing listens there: flow.mjs stops at the redirect
let idp;
let dataDir;
let metadata;
let jwks;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rolegate-idp-test-'));
  idp = await startIdp({ rpPublicUrl: RP, dataDir, logFile: join(LOG_DIR, 'idp-test-idp.log') });
  metadata = await (await fetch(`${idp.url}/.well-known/openid-configuration`)).json();
  jwks = await (await fetch(metadata.jwks_uri)).json();
});

after(async () => {
  await stopProcess(idp?.proc);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('discovery lists what rolegate needs', () => {
  assert.equal(metadata.issuer, idp.url);
  assert.match(idp.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(metadata.token_endpoint_auth_methods_supported.includes('client_secret_post'));
  assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  assert.ok(metadata.id_token_signing_alg_values_supported.includes('RS256'));
  for (const ep of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'end_session_endpoint', 'jwks_uri']) {
    assert.ok(metadata[ep]?.startsWith(`${idp.url}/`), `${ep} = ${metadata[ep]}`);
  }
  assert.equal(jwks.keys.length, 1);
  assert.equal(jwks.keys[0].kty, 'RSA');
  assert.equal(jwks.keys[0].alg, 'RS256');
  assert.ok(jwks.keys[0].kid);
  assert.equal(jwks.keys[0].d, undefined, 'private part must not be published');
});

for (const user of USERS) {
  test(`ID token for ${user.login} carries the right claims`, async () => {
    const { tokens, nonce } = await codeFlow({
      issuer: idp.url,
      clientId: 'rolegate-dev',
      clientSecret: 'rolegate-dev-secret',
      redirectUri: `${RP}/getAToken`,
      login: user.login,
      scope: 'openid profile email',
    });
    assert.equal(tokens.token_type, 'Bearer');
    const { header, payload } = verifyRs256(tokens.id_token, jwks);
    assert.equal(header.alg, 'RS256');
    assert.equal(payload.iss, idp.url);
    assert.equal(payload.aud, 'rolegate-dev');
    assert.equal(payload.nonce, nonce);
    assert.equal(payload.sub, user.sub);
    assert.notEqual(payload.sub, user.login);
    assert.ok(!payload.sub.includes(user.login), 'sub is opaque');
    assert.equal(payload.name, user.name);
    assert.equal(payload.preferred_username, `${user.login}@rolegate.dev`);
    assert.equal(payload.email, `${user.login}@rolegate.dev`);
    assert.equal(payload.tid, TENANT_ID);
    assert.equal(payload.oid, user.oid);
    assert.ok(payload.exp > payload.iat);
    if (user.roles === undefined) {
      assert.ok(!('roles' in payload), 'erin has no roles claim at all');
    } else {
      assert.deepEqual(payload.roles, user.roles);
    }

    // The access token for rolegate-dev (no resource) works at userinfo.
    const ui = await fetch(metadata.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(ui.status, 200);
    assert.equal((await ui.json()).sub, user.sub);
  });
}

test('expected role sets per user', () => {
  const byLogin = Object.fromEntries(USERS.map((u) => [u.login, u.roles]));
  assert.deepEqual(byLogin, {
    alice: ['DemoApp.Admin'], bob: ['DemoApp.Write'], carol: ['DemoApp.Read'], dave: [], erin: undefined,
  });
});

test('unknown user is refused on the login form', async () => {
  await assert.rejects(codeFlow({
    issuer: idp.url,
    clientId: 'rolegate-dev',
    clientSecret: 'rolegate-dev-secret',
    redirectUri: `${RP}/getAToken`,
    login: 'mallory',
  }), /Unknown user "mallory"/);
});

test('PKCE is required', async () => {
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: 'rolegate-dev', response_type: 'code', redirect_uri: `${RP}/getAToken`, scope: 'openid', state: 's1', nonce: 'n1',
  });
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const back = new URL(res.headers.get('location'));
  assert.equal(back.origin + back.pathname, `${RP}/getAToken`);
  assert.equal(back.searchParams.get('error'), 'invalid_request');
  assert.match(back.searchParams.get('error_description'), /PKCE/);
});

test('wrong client secret is rejected at the token endpoint', async () => {
  const res = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: 'x', redirect_uri: `${RP}/getAToken`, code_verifier: 'x'.repeat(43),
      client_id: 'rolegate-dev', client_secret: 'nope',
    }),
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, 'invalid_client');
});

function runGetToken(args) {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [join(IDP_DIR, 'get-token.mjs'), ...args], {
      env: { ...process.env, IDP_URL: idp.url }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('error', fail);
    child.on('exit', (code) => ok({ code, out, err }));
  });
}

test('get-token.mjs prints an RS256 JWT access token for api://rolegate-dev', async () => {
  const { code, out, err } = await runGetToken(['alice']);
  assert.equal(code, 0, err);
  const token = out.trim();
  assert.equal(token.split('\n').length, 1, 'prints just the token');
  const { header, payload } = verifyRs256(token, jwks);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(payload.iss, idp.url);
  assert.equal(payload.aud, 'api://rolegate-dev');
  assert.deepEqual(payload.roles, ['DemoApp.Admin']);
  assert.equal(payload.name, 'Alice Admin');
  assert.equal(payload.preferred_username, 'alice@rolegate.dev');
  assert.equal(payload.tid, TENANT_ID);
  assert.equal(payload.oid, USERS[0].oid);
  assert.equal(payload.sub, USERS[0].sub);
  assert.equal(payload.scp, 'access_as_user');
  assert.ok(payload.exp > Date.now() / 1000);

  const erin = await runGetToken(['erin']);
  assert.equal(erin.code, 0, erin.err);
  assert.ok(!('roles' in decodeJwt(erin.out.trim()).payload));

  const unknown = await runGetToken(['mallory']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.err, /Unknown user/);
});

test('the signing key survives a restart (same data dir, same kid)', async () => {
  const before = jwks.keys[0].kid;
  const second = await startIdp({ rpPublicUrl: RP, dataDir, logFile: join(LOG_DIR, 'idp-test-idp2.log') });
  try {
    const again = await (await fetch(`${second.url}/jwks`)).json();
    assert.equal(again.keys[0].kid, before);
  } finally {
    await stopProcess(second.proc);
  }
});
