// Headless flows against the dev IdP's Entra-shaped authorities (dev/idp/entra.mjs), over plain
// HTTP: authorization code + PKCE (login form posted), client credentials, refresh, and a
// private_key_jwt client assertion builder. Used by get-token.mjs and the e2e tests.
import { createHash, createPrivateKey, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

import * as jose from 'jose';

import { unescapeHtml } from './flow.mjs';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export async function discoverEntra(authority) {
  const res = await fetch(`${authority.replace(/\/+$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`discovery of ${authority} failed: HTTP ${res.status}`);
  return res.json();
}

/** A private_key_jwt assertion for `clientId` at `tokenEndpoint`; `overrides` tamper with it (tests). */
export async function clientAssertion({ clientId, tokenEndpoint, certFile, keyFile, overrides = {}, header = {} }) {
  const cert = new X509Certificate(readFileSync(certFile));
  const key = createPrivateKey(readFileSync(keyFile));
  const iat = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({
    aud: tokenEndpoint, iss: clientId, sub: clientId, jti: randomUUID(), iat, nbf: iat, exp: iat + 300, ...overrides,
  }).setProtectedHeader({
    alg: 'RS256', typ: 'JWT', 'x5t#S256': createHash('sha256').update(cert.raw).digest('base64url'), ...header,
  }).sign(key);
}

/** Client authentication form fields / headers for the token endpoint. */
export async function clientAuth({ clientId, clientSecret, basic, certificate, tokenEndpoint }) {
  if (certificate) {
    return {
      form: {
        client_id: clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await clientAssertion({ clientId, tokenEndpoint, ...certificate }),
      },
      headers: {},
    };
  }
  if (clientSecret && basic) {
    return { form: {}, headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` } };
  }
  return { form: { client_id: clientId, ...(clientSecret ? { client_secret: clientSecret } : {}) }, headers: {} };
}

export async function postToken(tokenEndpoint, form, headers = {}) {
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Authorization code + PKCE for `login` at `authority`. Returns { tokens, metadata, nonce, code }.
 * `tokenVersion: 1` asks the dev-only switch for a v1 access token; `displayName` fills the B2C
 * profile-edit form.
 */
export async function entraCodeFlow({
  authority, clientId, clientSecret, basic, certificate, redirectUri, login,
  scope = 'openid profile email', tokenVersion, displayName, nonce = b64url(randomBytes(16)),
}) {
  const metadata = await discoverEntra(authority);
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const auth = new URL(metadata.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope, state, nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
  }).toString();
  let res = await fetch(auth, { redirect: 'manual' });
  let html = await res.text();
  if (res.status !== 200) throw new Error(`authorize: HTTP ${res.status} ${res.headers.get('location') || html.slice(0, 200)}`);
  const action = /<form id="login-form" method="post" action="([^"]+)"/.exec(html)?.[1];
  const txn = /name="txn" value="([^"]+)"/.exec(html)?.[1];
  if (!action || !txn) throw new Error('no login form');
  res = await fetch(new URL(action, auth), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ txn, login, password: 'ignored', ...(displayName ? { display_name: displayName } : {}) }),
  });
  html = await res.text();
  const location = res.headers.get('location');
  if (res.status !== 302 || !location) {
    throw new Error(`sign-in failed (HTTP ${res.status}): ${unescapeHtml(/id="login-error"[^>]*>([^<]*)/.exec(html)?.[1] || html.slice(0, 200))}`);
  }
  const back = new URL(location);
  if (back.searchParams.get('error')) throw new Error(`IdP returned error=${back.searchParams.get('error')}: ${back.searchParams.get('error_description')}`);
  if (back.searchParams.get('state') !== state) throw new Error('state mismatch');
  const code = back.searchParams.get('code');
  const ca = await clientAuth({ clientId, clientSecret, basic, certificate, tokenEndpoint: metadata.token_endpoint });
  const { status, body } = await postToken(metadata.token_endpoint, {
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
    ...(tokenVersion ? { token_version: String(tokenVersion) } : {}), ...ca.form,
  }, ca.headers);
  if (status !== 200) throw new Error(`token endpoint: HTTP ${status} ${JSON.stringify(body)}`);
  return { tokens: body, metadata, nonce, code };
}

/** Client credentials (app-only) token for a daemon client. */
export async function entraClientCredentials({ authority, clientId, clientSecret, certificate, scope = 'api://rolegate-dev/.default', tokenVersion }) {
  const metadata = await discoverEntra(authority);
  const ca = await clientAuth({ clientId, clientSecret, certificate, tokenEndpoint: metadata.token_endpoint });
  const { status, body } = await postToken(metadata.token_endpoint, {
    grant_type: 'client_credentials', scope, ...(tokenVersion ? { token_version: String(tokenVersion) } : {}), ...ca.form,
  }, ca.headers);
  if (status !== 200) throw new Error(`token endpoint: HTTP ${status} ${JSON.stringify(body)}`);
  return { tokens: body, metadata };
}
