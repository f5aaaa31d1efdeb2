// Minimal RS256 JWT decoding/verification for the tests (node:crypto only).
import { createPublicKey, verify } from 'node:crypto';

export function decodeJwt(token) {
  const [h, p, s] = String(token).split('.');
  if (!h || !p || !s) throw new Error('not a compact JWS');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

/** Verifies an RS256 JWT against a JWKS (object with `keys`) by `kid`; returns the decoded JWT. */
export function verifyRs256(token, jwks) {
  const jwt = decodeJwt(token);
  if (jwt.header.alg !== 'RS256') throw new Error(`unexpected alg ${jwt.header.alg}`);
  const jwk = jwks.keys.find((k) => k.kid === jwt.header.kid);
  if (!jwk) throw new Error(`no key with kid ${jwt.header.kid}`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  if (!verify('sha256', Buffer.from(jwt.signingInput), key, jwt.signature)) {
    throw new Error('bad signature');
  }
  return jwt;
}
