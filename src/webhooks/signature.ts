// Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>` with the project's webhook secret, sent as
// `X-Lorafuse-Signature: t=<timestamp>,v1=<hex>`. The timestamp is signed so a captured delivery cannot be
// replayed later; receivers check the MAC in constant time and refuse timestamps outside a tolerance.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-lorafuse-signature';
export const TIMESTAMP_HEADER = 'x-lorafuse-timestamp';
export const EVENT_HEADER = 'x-lorafuse-event';
export const DELIVERY_HEADER = 'x-lorafuse-delivery';

/** Hex HMAC-SHA256 of `<timestamp>.<body>`: what `v1=` carries. */
export function signatureOf(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The X-Lorafuse-Signature value for a body sent at `timestamp` (Unix seconds). */
export function signatureHeader(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${signatureOf(secret, timestamp, body)}`;
}

/**
 * A receiver's check: true when `header` holds a v1 MAC of `body` at its `t=` under `secret`, and `t` is within
 * `toleranceSeconds` of `now` (Unix seconds). Several v1 entries are allowed (a secret being rotated).
 */
export function verifySignature(
  secret: string,
  header: string,
  body: string,
  options: { now?: number; toleranceSeconds?: number } = {},
): boolean {
  const parts = header.split(',').map((part) => part.trim().split('=', 2) as [string, string | undefined]);
  const timestamp = Number(parts.find(([key]) => key === 't')?.[1]);
  if (!Number.isSafeInteger(timestamp)) return false;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signatureOf(secret, timestamp, body), 'hex');
  return parts.some(([key, value]) => {
    if (key !== 'v1' || !value || !/^[0-9a-f]{64}$/.test(value)) return false;
    return timingSafeEqual(Buffer.from(value, 'hex'), expected);
  });
}
