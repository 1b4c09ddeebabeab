// The merge's ring arena: slots are carved in order, wrap to the start once the oldest are freed,
// never overlap a live slot, and must be freed oldest first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingArena } from '../../src/merge/workers/ring-arena.ts';

test('slots are aligned, wrap around once the oldest are released, and never overlap a live one', () => {
  const arena = new RingArena(1000, false);
  assert.equal(arena.capacity, 1024);
  assert.equal(arena.allocate(100), 0);
  assert.equal(arena.allocate(300), 128);
  assert.equal(arena.allocate(500), 448);
  assert.equal(arena.allocate(128), undefined, 'full: 76 bytes at the end, none at the start');
  arena.release(0);
  assert.equal(arena.allocate(128), 0, 'wraps into the freed head');
  assert.equal(arena.allocate(64), undefined, 'the wrapped slot may not reach the oldest live slot');
  arena.release(128);
  assert.equal(arena.allocate(64), 128);
  arena.release(448);
  arena.release(0);
  arena.release(128);
  assert.equal(arena.liveSlots, 0);
  assert.equal(arena.allocate(1024), 0, 'an empty arena starts again at 0');
});

test('release must free the oldest slot; a slot larger than the arena is an error', () => {
  const arena = new RingArena(256, true);
  assert.ok(arena.buffer instanceof SharedArrayBuffer);
  const first = arena.allocate(64)!;
  const second = arena.allocate(64)!;
  assert.throws(() => arena.release(second), /oldest first/);
  arena.release(first);
  assert.throws(() => arena.allocate(257), RangeError);
});
