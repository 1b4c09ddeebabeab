// The JSON limits: nesting counted by a linear scan that ignores brackets inside strings (escaped
// quotes included), a size cap, and the same depth rule for values parsed elsewhere (YAML).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkJsonLimits,
  JsonLimitError,
  jsonNestingDepth,
  parseBoundedJson,
  valueNestingDepth,
} from '../../src/tensors/index.ts';

test('nesting depth ignores brackets in strings and escaped quotes', () => {
  assert.equal(jsonNestingDepth('1'), 0);
  assert.equal(jsonNestingDepth('{"a":[1,{"b":[]}]}'), 4);
  assert.equal(jsonNestingDepth('{"a":"[[[{{{"}'), 1);
  assert.equal(jsonNestingDepth('{"a":"\\"[[[","b":[1]}'), 2);
  assert.equal(jsonNestingDepth('["\\\\",[2]]'), 2);
  // Stops counting past the cap: a hostile text is not scanned to its end.
  assert.equal(jsonNestingDepth('['.repeat(1e6), 10), 11);
});

test('parseBoundedJson: over the depth or size limit is a JsonLimitError, never a RangeError', () => {
  const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
  assert.throws(
    () => parseBoundedJson(deep),
    (e: unknown) => e instanceof JsonLimitError && e.limit === 'depth',
  );
  assert.deepEqual(parseBoundedJson('[[[1]]]', { maxDepth: 3, maxBytes: 100 }), [[[1]]]);
  assert.throws(
    () => checkJsonLimits('[[[[1]]]]', { maxDepth: 3, maxBytes: 100 }),
    (e: unknown) => e instanceof JsonLimitError && e.limit === 'depth',
  );
  assert.throws(
    () => checkJsonLimits(`"${'x'.repeat(200)}"`, { maxDepth: 3, maxBytes: 100 }),
    (e: unknown) => e instanceof JsonLimitError && e.limit === 'size',
  );
  // Malformed text is JSON.parse's SyntaxError, as before.
  assert.throws(() => parseBoundedJson('{"a":'), SyntaxError);
});

test('valueNestingDepth walks parsed values without recursion', () => {
  assert.equal(valueNestingDepth(1), 0);
  assert.equal(valueNestingDepth({ a: [1, { b: [] }] }), 4);
  let value: unknown = 1;
  for (let i = 0; i < 100_000; i++) value = [value];
  assert.equal(valueNestingDepth(value), 100_000);
  assert.equal(valueNestingDepth(value, 64), 65);
});
