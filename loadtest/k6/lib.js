// Shared helpers for the k6 scripts (k6 1.1, k6/experimental/websockets).
//
// Environment:
//   URL         gateway WebSocket URL(s), comma-separated (default ws://127.0.0.1:8081/ws);
//               VUs spread over them round-robin
//   SECRET      HS256 secret: connect with a JWT (jwt mode); unset: ?user=&name= (anonymous mode)
//   ADMIN_URL   a gateway's HTTP base for the operator API (default: from the first URL)
//   ADMIN_KEY   operator API key (default dev-admin-key, as in make cluster-up)
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

export const URLS = (__ENV.URL || 'ws://127.0.0.1:8081/ws').split(',').map((u) => u.trim()).filter(Boolean);
export const ADMIN_URL = __ENV.ADMIN_URL || URLS[0].replace(/^ws/, 'http').replace(/\/ws$/, '');
export const ADMIN_KEY = __ENV.ADMIN_KEY || 'dev-admin-key';

export function int(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : parseInt(v, 10);
}

function b64url(s) {
  return encoding.b64encode(s, 'rawurl');
}

/** A connect URL for `user` on the VU's gateway. */
export function connectUrl(user, index) {
  const base = URLS[(index === undefined ? __VU : index) % URLS.length];
  const secret = __ENV.SECRET;
  if (!secret) {
    return `${base}?user=${encodeURIComponent(user)}&name=${encodeURIComponent(user)}`;
  }
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = b64url(JSON.stringify({ sub: user, name: user, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const signature = crypto.hmac('sha256', secret, `${header}.${claims}`, 'base64rawurl');
  return `${base}?token=${header}.${claims}.${signature}`;
}

/** A unique user id per VU and iteration. */
export function userId(prefix) {
  return `${prefix}-${__VU}-${__ITER}`;
}
