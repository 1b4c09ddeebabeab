// Webhook signatures against a known answer (Python's hmac over the same bytes) and the receiver's checks:
// wrong secret, changed body, stale timestamp, malformed header, and a second v1 entry during rotation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signatureHeader, signatureOf, verifySignature } from '../../src/webhooks/index.ts';

const SECRET = 'whsec-known-answer-secret';
const BODY = '{"id":"whd-1","type":"job.completed"}';
const T = 1733300000;
// python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec-known-answer-secret",
//   b"1733300000.{\"id\":\"whd-1\",\"type\":\"job.completed\"}", hashlib.sha256).hexdigest())'
const EXPECTED = 'b9972f1a5249ee53edb54f743df617321c387be9cb7d0f8b021ec03d79000f58';

describe('webhook signatures', () => {
  it('is HMAC-SHA256 of "<timestamp>.<body>" in hex, sent as t=...,v1=...', () => {
    assert.equal(signatureOf(SECRET, T, BODY), EXPECTED);
    assert.equal(signatureHeader(SECRET, T, BODY), `t=${T},v1=${EXPECTED}`);
  });

  it('verifies within the tolerance and refuses every alteration', () => {
    const header = signatureHeader(SECRET, T, BODY);
    assert.equal(verifySignature(SECRET, header, BODY, { now: T + 10 }), true);
    assert.equal(verifySignature('whsec-another-secret-00', header, BODY, { now: T }), false);
    assert.equal(verifySignature(SECRET, header, `${BODY} `, { now: T }), false);
    assert.equal(verifySignature(SECRET, header, BODY, { now: T + 301 }), false, 'stale');
    assert.equal(verifySignature(SECRET, header, BODY, { now: T + 3600, toleranceSeconds: 3600 }), true);
    assert.equal(
      verifySignature(SECRET, `t=${T + 1},v1=${EXPECTED}`, BODY, { now: T }),
      false,
      'timestamp is signed',
    );
    assert.equal(verifySignature(SECRET, `v1=${EXPECTED}`, BODY, { now: T }), false, 'no timestamp');
    assert.equal(verifySignature(SECRET, `t=${T},v1=abc`, BODY, { now: T }), false, 'malformed MAC');
    assert.equal(
      verifySignature(SECRET, `t=${T},v1=${'0'.repeat(64)},v1=${EXPECTED}`, BODY, { now: T }),
      true,
    );
  });
});
