// A headless authorization-code + PKCE flow against the dev IdP's real endpoints, over plain
// HTTP (no browser): authorize -> login form post -> redirect back -> token exchange.
// Used by get-token.mjs and by the e2e IdP tests.
import { createHash, randomBytes } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Decodes the HTML entities a page may put in an attribute (named and numeric). */
export const unescapeHtml = (s) => s
  .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(Number.parseInt(h, 16)))
  .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(Number.parseInt(d, 10)))
  .replace(/&(quot|lt|gt|amp);/g, (_, e) => ({ quot: '"', lt: '<', gt: '>', amp: '&' }[e]));

/** A minimal cookie jar for one host: keeps name=value pairs, honours deletions. */
export class CookieJar {
  #cookies = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie?.() ?? []) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0\b/i.test(line)) {
        this.#cookies.delete(name);
      } else {
        this.#cookies.set(name, value);
      }
    }
  }

  get(name) {
    return this.#cookies.get(name);
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function discover(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`discovery failed: HTTP ${res.status}`);
  return res.json();
}

/**
 * Runs the code flow for `login` and returns { tokens, metadata, code }.
 * Throws when the IdP refuses (unknown user, bad client, ...).
 */
export async function codeFlow({
  issuer,
  clientId,
  clientSecret,
  redirectUri,
  login,
  scope = 'openid profile email',
  resource,
  nonce = b64url(randomBytes(16)),
  fetchImpl = fetch,
}) {
  const metadata = await discover(issuer);
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  const jar = new CookieJar();

  const auth = new URL(metadata.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(resource ? { resource } : {}),
  }).toString();

  // Follow redirects by hand until we land on the redirect_uri (which nobody listens on).
  let url = auth.toString();
  let method = 'GET';
  let body;
  for (let hop = 0; hop < 12; hop += 1) {
    if (url.startsWith(redirectUri)) {
      const back = new URL(url);
      if (back.searchParams.get('error')) {
        throw new Error(`IdP returned error=${back.searchParams.get('error')}: ${back.searchParams.get('error_description') || ''}`);
      }
      if (back.searchParams.get('state') !== state) throw new Error('state mismatch on the redirect back');
      const code = back.searchParams.get('code');
      if (!code) throw new Error(`no code in ${url}`);
      const form = new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: clientId,
        ...(clientSecret ? { client_secret: clientSecret } : {}),
        ...(resource ? { resource } : {}),
      });
      const res = await fetchImpl(metadata.token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form,
      });
      const tokens = await res.json();
      if (!res.ok) throw new Error(`token endpoint: HTTP ${res.status} ${JSON.stringify(tokens)}`);
      return { tokens, metadata, code, nonce };
    }

    const res = await fetchImpl(url, {
      method,
      redirect: 'manual',
      headers: {
        cookie: jar.header(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
    });
    jar.store(res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).toString();
      method = 'GET';
      body = undefined;
      await res.arrayBuffer();
      continue;
    }
    const html = await res.text();
    if (res.status === 200 && /name="login"/.test(html)) {
      const action = /<form id="login-form" method="post" action="([^"]+)"/.exec(html)?.[1];
      if (!action) throw new Error('login form without action');
      url = new URL(action.replace(/&amp;/g, '&'), url).toString();
      method = 'POST';
      body = new URLSearchParams({ login, password: 'ignored' }).toString();
      continue;
    }
    const reason = unescapeHtml(/id="login-error"[^>]*>([^<]*)/.exec(html)?.[1]
      || html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300));
    throw new Error(`sign-in failed at ${new URL(url).pathname} (HTTP ${res.status}): ${reason}`);
  }
  throw new Error('too many redirects');
}
