// Fuzz (fast-check) of the safetensors reader: random mutations of valid files (flipped and inserted
// bytes, truncation, a rewritten length field, numbers in the header replaced by hostile ones) never
// crash the reader and never make it allocate past what the file holds: each run ends in a
// SafetensorsError or in a read whose every tensor fits inside the file's data. Bounded runs.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { DTYPE_BYTES, SafetensorsError, SafetensorsFile, writeSafetensors } from '../../src/tensors/index.ts';
import { parseHeaderJson, validateHeader } from '../../src/tensors/header.ts';
import { tempDir } from '../helpers/redis.ts';

let dir: ReturnType<typeof tempDir>;
let valid: Buffer;

before(async () => {
  dir = tempDir('lorafuse-fuzz-st');
  const file = path.join(dir.dir, 'valid.safetensors');
  await writeSafetensors(
    file,
    [
      {
        name: 'a.weight',
        dtype: 'F32',
        shape: [3, 4],
        data: Float32Array.from({ length: 12 }, (_, i) => i / 7),
      },
      { name: 'b.bias', dtype: 'F16', shape: [5], data: Uint16Array.from([1, 2, 3, 4, 5]) },
      { name: 'c.ids', dtype: 'I64', shape: [2], data: BigInt64Array.from([7n, -1n]) },
      { name: 'd.mask', dtype: 'U8', shape: [2, 2], data: Uint8Array.from([0, 1, 1, 0]) },
    ],
    { split: 'train', class_names: '["x","y"]' },
  );
  valid = readFileSync(file);
});
after(() => dir.remove());

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; at: number }
  | { kind: 'length'; value: bigint }
  | { kind: 'number'; which: number; value: string };

const hostileNumbers = fc.oneof(
  fc.integer({ min: -5, max: 1 << 20 }).map(String),
  fc.constantFrom('9007199254740993', '1e308', '-0', '1.5', '18446744073709551615', '4294967296', '2e9'),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('length' as const), value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ kind: fc.constant('number' as const), which: fc.nat(), value: hostileNumbers }),
);

/** Applies mutations in order; `number` rewrites the which-th number of the header text. */
function mutate(source: Buffer, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(source);
  for (const m of mutations) {
    if (bytes.length === 0) break;
    switch (m.kind) {
      case 'flip':
        bytes[m.at % bytes.length] = m.value;
        break;
      case 'insert': {
        const at = m.at % (bytes.length + 1);
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(m.bytes), bytes.subarray(at)]);
        break;
      }
      case 'truncate':
        bytes = bytes.subarray(0, m.at % (bytes.length + 1));
        break;
      case 'length':
        if (bytes.length >= 8) bytes.writeBigUInt64LE(m.value, 0);
        break;
      case 'number': {
        if (bytes.length < 8) break;
        const headerLength = Number(bytes.readBigUInt64LE(0));
        if (headerLength > bytes.length - 8) break;
        const text = bytes.subarray(8, 8 + headerLength).toString('latin1');
        const numbers = [...text.matchAll(/-?\d+/g)];
        if (numbers.length === 0) break;
        const target = numbers[m.which % numbers.length];
        const edited = text.slice(0, target.index) + m.value + text.slice(target.index + target[0].length);
        const header = Buffer.from(edited, 'latin1');
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64LE(BigInt(header.length));
        bytes = Buffer.concat([prefix, header, bytes.subarray(8 + headerLength)]);
        break;
      }
    }
  }
  return bytes;
}

test('header parsing and validation of mutated headers: a SafetensorsError or a layout inside the data', () => {
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
      const bytes = mutate(valid, mutations);
      if (bytes.length < 8) return;
      const declared = bytes.readBigUInt64LE(0);
      if (declared > BigInt(bytes.length - 8)) return; // refused before parsing (file test below)
      const headerLength = Number(declared);
      const dataLength = bytes.length - 8 - headerLength;
      try {
        const json = parseHeaderJson(new Uint8Array(bytes.subarray(8, 8 + headerLength)), 'fuzz');
        const { tensors } = validateHeader(json, dataLength, 'fuzz');
        let total = 0;
        for (const info of tensors) {
          const [start, end] = info.dataOffsets;
          assert.ok(
            Number.isSafeInteger(start) && Number.isSafeInteger(end) && start <= end && end <= dataLength,
          );
          assert.equal(end - start, info.numel * DTYPE_BYTES[info.dtype]);
          total += end - start;
        }
        assert.ok(total <= dataLength, 'tensors never claim more bytes than the file holds');
      } catch (error) {
        if (!(error instanceof SafetensorsError)) throw error;
      }
    }),
    { numRuns: 2000 },
  );
});

test('opening and reading mutated files: a SafetensorsError or tensors read within the file', async () => {
  let opened = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
      const bytes = mutate(valid, mutations);
      const file = path.join(dir.dir, 'mutated.safetensors');
      writeFileSync(file, bytes);
      let reader: SafetensorsFile | undefined;
      try {
        reader = await SafetensorsFile.open(file, { readahead: false });
        opened++;
        const dataLength = bytes.length - 8 - reader.headerLength;
        for (const name of reader.names()) {
          const info = reader.info(name);
          const raw = await reader.readBytes(name);
          assert.equal(raw.byteLength, info.numel * DTYPE_BYTES[info.dtype]);
          assert.ok(raw.byteLength <= dataLength, 'a read never exceeds the file');
          const widened: Float32Array | null = await reader.readFloat32(name).catch((error: unknown) => {
            // BOOL and the like have no float form: a typed refusal, not a crash.
            if (error instanceof SafetensorsError) return null;
            throw error;
          });
          if (widened) assert.equal(widened.length, info.numel);
        }
      } catch (error) {
        if (!(error instanceof SafetensorsError)) throw error;
        refused++;
      } finally {
        await reader?.close();
      }
    }),
    { numRuns: 300 },
  );
  // Both outcomes are exercised (a fuzz that only ever refuses, or only ever reads, proves little).
  assert.ok(opened > 0 && refused > 0, `opened ${opened}, refused ${refused}`);
});
