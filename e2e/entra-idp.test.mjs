// The dev IdP's Entra-shaped authorities by themselves (no browser, no rolegate): discovery
// documents, ID/access token claims of each kind, PKCE, client authentication (secret post/basic,
// private_key_jwt forged/replayed), client credentials, refresh rotation, B2C extras, end-session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';

import { startIdp, stopProcess, LOG_DIR } from './harness.mjs';
import { verifyRs256 } from './jwt.mjs';
import { TENANT_ID } from '../dev/idp/users.mjs';
import {
  FABRIKAM_TENANT_ID, EXTERNAL_TENANT_ID, B2C_TENANT_ID, AADB2C90118,
} from '../dev/idp/entra.mjs';
import {
  entraCodeFlow, entraClientCredentials, discoverEntra, clientAssertion, postToken,
} from '../dev/idp/entra-flow.mjs';

const RP = 'http://127.0.0.1:8765';
let idp;
let dataDir;
let port;
let home;
let orgs;
let ext;
let b2c;
let jwks;
let certificate;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rolegate-entra-idp-test-'));
  idp = await startIdp({ rpPublicUrl: RP, dataDir, logFile: join(LOG_DIR, 'entra-idp-test-idp.log') });
  port = new URL(idp.url).port;
  home = `${idp.url}/${TENANT_ID}/v2.0`;
  orgs = `${idp.url}/organizations/v2.0`;
  ext = `http://localhost:${port}/${EXTERNAL_TENANT_ID}/v2.0`;
  b2c = (p = 'B2C_1_signupsignin') => `http://localhost:${port}/rolegateb2c.onmicrosoft.com/${p}/v2.0`;
  jwks = await (await fetch(`${idp.url}/${TENANT_ID}/discovery/v2.0/keys`)).json();
  certificate = { certFile: join(dataDir, 'client-cert.pem'), keyFile: join(dataDir, 'client-key.pem') };
});

after(async () => {
  await stopProcess(idp?.proc);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const web = { clientId: 'rolegate-dev', clientSecret: 'rolegate-dev-secret', redirectUri: `${RP}/getAToken` };
const API = 'openid profile email offline_access api://rolegate-dev/access_as_user';

test('root issuer discovery is unchanged (oidc-provider)', async () => {
  const m = await (await fetch(`${idp.url}/.well-known/openid-configuration`)).json();
  assert.equal(m.issuer, idp.url);
  assert.ok(m.userinfo_endpoint.startsWith(idp.url));
});

test('home tenant discovery has the Entra URLs', async () => {
  const m = await discoverEntra(home);
  assert.equal(m.issuer, home);
  assert.equal(m.authorization_endpoint, `${idp.url}/${TENANT_ID}/oauth2/v2.0/authorize`);
  assert.equal(m.token_endpoint, `${idp.url}/${TENANT_ID}/oauth2/v2.0/token`);
  assert.equal(m.jwks_uri, `${idp.url}/${TENANT_ID}/discovery/v2.0/keys`);
  assert.equal(m.end_session_endpoint, `${idp.url}/${TENANT_ID}/oauth2/v2.0/logout`);
  assert.deepEqual(m.response_types_supported, ['code']);
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(m.id_token_signing_alg_values_supported, ['RS256']);
  assert.deepEqual(m.token_endpoint_auth_methods_supported, ['client_secret_post', 'client_secret_basic', 'private_key_jwt']);
  assert.equal(jwks.keys.length, 1);
  assert.equal(jwks.keys[0].d, undefined);
});

test('organizations discovery carries the literal {tenantid} template; External ID and B2C issuers differ from the authority', async () => {
  assert.equal((await discoverEntra(orgs)).issuer, `${idp.url}/{tenantid}/v2.0`);
  assert.equal((await discoverEntra(`${idp.url}/${FABRIKAM_TENANT_ID}/v2.0`)).issuer, `${idp.url}/${FABRIKAM_TENANT_ID}/v2.0`);
  const e = await discoverEntra(ext);
  assert.equal(e.issuer, `http://${EXTERNAL_TENANT_ID}.localhost:${port}/${EXTERNAL_TENANT_ID}/v2.0`);
  assert.ok(e.token_endpoint.startsWith(`http://localhost:${port}/${EXTERNAL_TENANT_ID}/`));
  for (const p of ['B2C_1_signupsignin', 'B2C_1_profileedit', 'B2C_1_passwordreset']) {
    const m = await discoverEntra(b2c(p));
    assert.equal(m.issuer, `http://localhost:${port}/${B2C_TENANT_ID}/v2.0/`);
    assert.equal(m.authorization_endpoint, `http://localhost:${port}/rolegateb2c.onmicrosoft.com/${p}/oauth2/v2.0/authorize`);
  }
  // one key set for all Entra-shaped tenants
  assert.deepEqual(await (await fetch((await discoverEntra(b2c())).jwks_uri)).json(), jwks);
});

test('ID token and v2 access token are Entra-shaped', async () => {
  const { tokens, nonce } = await entraCodeFlow({ authority: home, ...web, login: 'alice', scope: API });
  const { header, payload: id } = verifyRs256(tokens.id_token, jwks);
  assert.equal(header.typ, 'JWT');
  assert.equal(id.aud, 'rolegate-dev');
  assert.equal(id.iss, home);
  assert.equal(id.nonce, nonce);
  assert.equal(id.tid, TENANT_ID);
  assert.equal(id.ver, '2.0');
  assert.deepEqual(id.roles, ['DemoApp.Admin']);
  for (const c of ['iat', 'nbf', 'exp', 'sub', 'oid', 'name', 'preferred_username', 'email', 'sid', 'login_hint', 'uti', 'rh', 'aio']) assert.ok(id[c], c);
  assert.equal(id.scp, undefined);
  assert.equal(id.azp, undefined);
  const { payload: at } = verifyRs256(tokens.access_token, jwks);
  assert.equal(at.aud, 'rolegate-dev');
  assert.equal(at.iss, home);
  assert.equal(at.scp, 'access_as_user');
  assert.equal(at.azp, 'rolegate-dev');
  assert.equal(at.azpacr, '1');
  assert.equal(at.ver, '2.0');
  assert.equal(at.oid, id.oid);
  assert.equal(at.nonce, undefined);
  assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
});

test('sub is pairwise per client, oid is not', async () => {
  const a = await entraCodeFlow({ authority: home, ...web, login: 'bob' });
  const b = await entraCodeFlow({ authority: home, clientId: 'rolegate-cli', redirectUri: 'http://127.0.0.1/cli-callback', login: 'bob' });
  const pa = verifyRs256(a.tokens.id_token, jwks).payload;
  const pb = verifyRs256(b.tokens.id_token, jwks).payload;
  assert.notEqual(pa.sub, pb.sub);
  assert.equal(pa.oid, pb.oid);
});

test('v1 access token via token_version=1', async () => {
  const { tokens } = await entraCodeFlow({ authority: home, ...web, login: 'carol', scope: API, tokenVersion: 1 });
  const { payload } = verifyRs256(tokens.access_token, jwks);
  assert.equal(payload.iss, `${idp.url}/${TENANT_ID}/`);
  assert.equal(payload.aud, 'api://rolegate-dev');
  assert.equal(payload.appid, 'rolegate-dev');
  assert.equal(payload.ver, '1.0');
  assert.equal(payload.azp, undefined);
  assert.deepEqual(payload.roles, ['DemoApp.Read']);
});

test('erin (unassigned) and dave (empty roles) carry no roles claim', async () => {
  for (const login of ['erin', 'dave']) {
    const { tokens } = await entraCodeFlow({ authority: home, ...web, login, scope: API });
    assert.equal(verifyRs256(tokens.id_token, jwks).payload.roles, undefined);
    assert.equal(verifyRs256(tokens.access_token, jwks).payload.roles, undefined);
  }
});

test('organizations: tokens carry the user tenant issuer; mallory is in fabrikam with DemoApp.Admin', async () => {
  const { tokens } = await entraCodeFlow({ authority: orgs, ...web, login: 'mallory' });
  const { payload } = verifyRs256(tokens.id_token, jwks);
  assert.equal(payload.tid, FABRIKAM_TENANT_ID);
  assert.equal(payload.iss, `${idp.url}/${FABRIKAM_TENANT_ID}/v2.0`);
  assert.deepEqual(payload.roles, ['DemoApp.Admin']);
  const a = verifyRs256((await entraCodeFlow({ authority: orgs, ...web, login: 'alice' })).tokens.id_token, jwks).payload;
  assert.equal(a.iss, home);
  await assert.rejects(entraCodeFlow({ authority: home, ...web, login: 'mallory' }), /Unknown user "mallory"/);
});

test('External ID tokens: issuer host is the tenant GUID', async () => {
  const { tokens } = await entraCodeFlow({ authority: ext, ...web, login: 'alice' });
  const { payload } = verifyRs256(tokens.id_token, jwks);
  assert.equal(payload.iss, `http://${EXTERNAL_TENANT_ID}.localhost:${port}/${EXTERNAL_TENANT_ID}/v2.0`);
  assert.equal(payload.tid, EXTERNAL_TENANT_ID);
});

test('B2C: tfp claim, GUID issuer with trailing slash, profile edit returns the new name', async () => {
  const { tokens } = await entraCodeFlow({ authority: b2c(), ...web, login: 'bob' });
  const { payload } = verifyRs256(tokens.id_token, jwks);
  assert.equal(payload.tfp, 'B2C_1_signupsignin');
  assert.equal(payload.iss, `http://localhost:${port}/${B2C_TENANT_ID}/v2.0/`);
  const edited = await entraCodeFlow({ authority: b2c('B2C_1_profileedit'), ...web, login: 'bob', displayName: 'Robert Edited' });
  const p2 = verifyRs256(edited.tokens.id_token, jwks).payload;
  assert.equal(p2.tfp, 'B2C_1_profileedit');
  assert.equal(p2.name, 'Robert Edited');
});

test('B2C "Forgot your password?" returns AADB2C90118 to the redirect_uri', async () => {
  const m = await discoverEntra(b2c());
  const url = new URL(m.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: 'rolegate-dev', response_type: 'code', redirect_uri: `${RP}/getAToken`, scope: 'openid', state: 'st1', nonce: 'n', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
  });
  const html = await (await fetch(url)).text();
  const href = /id="forgot-password" href="([^"]+)"/.exec(html)[1].replace(/&amp;/g, '&');
  const res = await fetch(new URL(href, url), { redirect: 'manual' });
  assert.equal(res.status, 302);
  const back = new URL(res.headers.get('location'));
  assert.equal(back.origin + back.pathname, `${RP}/getAToken`);
  assert.equal(back.searchParams.get('error'), 'access_denied');
  assert.equal(back.searchParams.get('error_description'), AADB2C90118);
  assert.equal(back.searchParams.get('state'), 'st1');
});

function authorizeUrl(m, params) {
  const url = new URL(m.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: 'rolegate-dev', response_type: 'code', redirect_uri: `${RP}/getAToken`, scope: 'openid', state: 's1', nonce: 'n1', ...params,
  });
  return url;
}

test('authorize: PKCE required, plain refused, unregistered redirect_uri is a page (no redirect)', async () => {
  const m = await discoverEntra(home);
  let res = await fetch(authorizeUrl(m, {}), { redirect: 'manual' });
  assert.equal(res.status, 302);
  let back = new URL(res.headers.get('location'));
  assert.equal(back.searchParams.get('error'), 'invalid_request');
  assert.match(back.searchParams.get('error_description'), /Proof Key/);
  assert.equal(back.searchParams.get('state'), 's1');
  res = await fetch(authorizeUrl(m, { code_challenge: 'abc', code_challenge_method: 'plain' }), { redirect: 'manual' });
  back = new URL(res.headers.get('location'));
  assert.match(back.searchParams.get('error_description'), /S256/);
  res = await fetch(authorizeUrl(m, { redirect_uri: 'https://evil.example/cb', code_challenge: 'abc', code_challenge_method: 'S256' }), { redirect: 'manual' });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('location'), null);
  assert.match(await res.text(), /AADSTS50011/);
});

test('token: code without verifier or with a wrong verifier is refused', async () => {
  // Drive authorize + login by hand to get a code, then redeem it badly.
  const m = await discoverEntra(home);
  const getCode = async () => {
    const html = await (await fetch(authorizeUrl(m, { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }))).text();
    const txn = /name="txn" value="([^"]+)"/.exec(html)[1];
    const res = await fetch(`${idp.url}/${TENANT_ID}/oauth2/v2.0/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ txn, login: 'alice' }) });
    return new URL(res.headers.get('location')).searchParams.get('code');
  };
  const base = { grant_type: 'authorization_code', redirect_uri: `${RP}/getAToken`, client_id: 'rolegate-dev', client_secret: 'rolegate-dev-secret' };
  let r = await postToken(m.token_endpoint, { ...base, code: await getCode() });
  assert.equal(r.status, 400);
  assert.match(r.body.error_description, /code_verifier/);
  r = await postToken(m.token_endpoint, { ...base, code: await getCode(), code_verifier: 'wrong'.repeat(10) });
  assert.equal(r.body.error, 'invalid_grant');
  // RFC 7636 appendix B verifier for that challenge works, once.
  const code = await getCode();
  r = await postToken(m.token_endpoint, { ...base, code, code_verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk' });
  assert.equal(r.status, 200);
  r = await postToken(m.token_endpoint, { ...base, code, code_verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk' });
  assert.equal(r.body.error, 'invalid_grant', 'a code is single-use');
});

test('client_secret_basic works; a wrong secret is invalid_client', async () => {
  const { tokens } = await entraCodeFlow({ authority: home, ...web, basic: true, login: 'bob' });
  assert.ok(tokens.id_token);
  await assert.rejects(entraCodeFlow({ authority: home, ...web, clientSecret: 'nope', login: 'bob' }), /invalid_client/);
});

test('certificate client: generated certificate files, private_key_jwt sign-in (azpacr 2)', async () => {
  assert.ok(existsSync(certificate.certFile) && existsSync(certificate.keyFile));
  const { tokens } = await entraCodeFlow({
    authority: home, clientId: 'rolegate-dev-cert', certificate, redirectUri: `${RP}/getAToken`, login: 'alice', scope: API,
  });
  assert.equal(verifyRs256(tokens.id_token, jwks).payload.aud, 'rolegate-dev-cert');
  assert.equal(verifyRs256(tokens.access_token, jwks).payload.azpacr, '2');
  await assert.rejects(entraCodeFlow({ authority: home, clientId: 'rolegate-dev-cert', clientSecret: 'x', redirectUri: `${RP}/getAToken`, login: 'alice' }), /client_assertion is required/);
});

test('private_key_jwt: forged, wrong audience, too long, replayed assertions are refused', async () => {
  const m = await discoverEntra(home);
  const cc = (assertion) => postToken(m.token_endpoint, {
    grant_type: 'client_credentials', scope: 'api://rolegate-dev/.default', client_id: 'rolegate-dev-cert',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
  });
  const base = { clientId: 'rolegate-dev-cert', tokenEndpoint: m.token_endpoint, ...certificate };
  const ok = await clientAssertion(base);
  assert.equal((await cc(ok)).status, 200);
  const replay = await cc(ok);
  assert.equal(replay.status, 401);
  assert.match(replay.body.error_description, /replayed/);
  // forged: signed by another key, same x5t#S256
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const otherKey = join(dataDir, 'other-key.pem');
  (await import('node:fs')).writeFileSync(otherKey, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  let r = await cc(await clientAssertion({ ...base, keyFile: otherKey }));
  assert.equal(r.status, 401);
  assert.match(r.body.error_description, /signature/);
  r = await cc(await clientAssertion({ ...base, overrides: { aud: `${idp.url}/organizations/oauth2/v2.0/token` } }));
  assert.match(r.body.error_description, /aud/);
  r = await cc(await clientAssertion({ ...base, overrides: { exp: Math.floor(Date.now() / 1000) + 3600 } }));
  assert.match(r.body.error_description, /10 minutes/);
  r = await cc(await clientAssertion({ ...base, overrides: { exp: Math.floor(Date.now() / 1000) - 120 } }));
  assert.match(r.body.error_description, /exp/);
  r = await cc(await clientAssertion({ ...base, header: { 'x5t#S256': 'AAAA' } }));
  assert.match(r.body.error_description, /x5t#S256/);
  r = await cc(await clientAssertion({ ...base, overrides: { sub: 'rolegate-dev' } }));
  assert.equal(r.status, 401);
});

test('client_credentials: app-only tokens with and without roles', async () => {
  const { tokens } = await entraClientCredentials({ authority: home, clientId: 'rolegate-daemon', clientSecret: 'rolegate-daemon-secret' });
  const { payload } = verifyRs256(tokens.access_token, jwks);
  assert.deepEqual(payload.roles, ['DemoApp.Read']);
  assert.equal(payload.idtyp, 'app');
  assert.equal(payload.scp, undefined);
  assert.equal(payload.aud, 'rolegate-dev');
  assert.equal(payload.azp, 'rolegate-daemon');
  assert.equal(payload.sub, payload.oid);
  assert.equal(tokens.id_token, undefined);
  assert.equal(tokens.refresh_token, undefined);
  const v1 = verifyRs256((await entraClientCredentials({ authority: home, clientId: 'rolegate-daemon', clientSecret: 'rolegate-daemon-secret', tokenVersion: 1 })).tokens.access_token, jwks).payload;
  assert.equal(v1.ver, '1.0');
  assert.equal(v1.appid, 'rolegate-daemon');
  const none = verifyRs256((await entraClientCredentials({ authority: home, clientId: 'rolegate-daemon-norole', clientSecret: 'rolegate-daemon-norole-secret' })).tokens.access_token, jwks).payload;
  assert.equal(none.roles, undefined);
  assert.equal(none.scp, undefined);
  await assert.rejects(entraClientCredentials({ authority: orgs, clientId: 'rolegate-daemon', clientSecret: 'rolegate-daemon-secret' }), /tenant-specific/);
  await assert.rejects(entraClientCredentials({ authority: home, clientId: 'rolegate-daemon', clientSecret: 'rolegate-daemon-secret', scope: 'api://rolegate-dev/access_as_user' }), /invalid_scope/);
});

test('refresh_token grant rotates the refresh token and returns new tokens', async () => {
  const { tokens, metadata } = await entraCodeFlow({ authority: home, ...web, login: 'carol', scope: API });
  const form = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'rolegate-dev', client_secret: 'rolegate-dev-secret', scope: API };
  const r = await postToken(metadata.token_endpoint, form);
  assert.equal(r.status, 200);
  assert.ok(r.body.refresh_token && r.body.refresh_token !== tokens.refresh_token);
  assert.equal(verifyRs256(r.body.id_token, jwks).payload.oid, verifyRs256(tokens.id_token, jwks).payload.oid);
  assert.equal(verifyRs256(r.body.access_token, jwks).payload.scp, 'access_as_user');
  const again = await postToken(metadata.token_endpoint, form);
  assert.equal(again.body.error, 'invalid_grant', 'the old refresh token is spent');
  const noOffline = await entraCodeFlow({ authority: home, ...web, login: 'carol' });
  assert.equal(noOffline.tokens.refresh_token, undefined);
});

test('end-session redirects only to a registered post_logout_redirect_uri, with state', async () => {
  const m = await discoverEntra(home);
  let res = await fetch(`${m.end_session_endpoint}?post_logout_redirect_uri=${encodeURIComponent(`${RP}/login`)}&state=xyz`, { redirect: 'manual' });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), `${RP}/login?state=xyz`);
  res = await fetch(`${m.end_session_endpoint}?post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`, { redirect: 'manual' });
  assert.equal(res.status, 400);
});
