// One named test per check of the reader: each builds a hostile or broken file and expects the
// stable error code and a message that names the file (and the tensor when there is one).

import assert from 'node:assert/strict';
import { truncateSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { SafetensorsError, SafetensorsFile } from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';
import { headerText, rawSafetensors, writeRaw } from './raw-file.ts';

let scratch: ReturnType<typeof tempDir>;
before(() => {
  scratch = tempDir('tensors-validation');
});
after(() => scratch.remove());

let counter = 0;
function fileOf(bytes: Uint8Array): string {
  counter++;
  return writeRaw(scratch.dir, `attack-${counter}.safetensors`, bytes);
}

async function expectError(bytes: Uint8Array, code: string, tensor?: string): Promise<SafetensorsError> {
  const file = fileOf(bytes);
  const error = await SafetensorsFile.open(file).then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SafetensorsError, `not a SafetensorsError: ${error}`);
  assert.equal(error.code, code, error.message);
  assert.equal(error.file, file);
  assert.ok(error.message.includes(file), `message does not name the file: ${error.message}`);
  if (tensor !== undefined) {
    assert.equal(error.tensor, tensor);
    assert.ok(error.message.includes(`'${tensor}'`), `message does not name the tensor: ${error.message}`);
  }
  return error;
}

const f32x2 = (offsets: [number, number]) => ({ dtype: 'F32', shape: [2], data_offsets: offsets });
const eightBytes = new Uint8Array(8);

describe('SafetensorsFile.open rejects', () => {
  test('a file shorter than 8 bytes', async () => {
    await expectError(new Uint8Array([1, 0, 0]), 'file_too_small');
  });

  test('a header length over the 100 MB cap (read as u64, not truncated to 32 bits)', async () => {
    await expectError(rawSafetensors('{}', undefined, 100_000_001n), 'header_too_large');
    // 2^32 + 2 would read as 2 if only the low 32 bits were used
    await expectError(rawSafetensors('{}', undefined, 2n ** 32n + 2n), 'header_too_large');
    await expectError(rawSafetensors('{}', undefined, 2n ** 64n - 1n), 'header_too_large');
  });

  test('a header length that goes past the end of the file', async () => {
    await expectError(rawSafetensors('{}', undefined, 4096n), 'header_out_of_bounds');
  });

  test('a header that is not valid UTF-8', async () => {
    const header = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    await expectError(rawSafetensors(header), 'header_not_utf8');
    // an overlong encoding of '/' is invalid too
    const overlong = Buffer.concat([Buffer.from('{"'), Buffer.from([0xc0, 0xaf]), Buffer.from('":1}')]);
    await expectError(rawSafetensors(overlong), 'header_not_utf8');
  });

  test('a header that is not JSON', async () => {
    await expectError(rawSafetensors('{"a": [1, 2'), 'header_invalid_json');
    await expectError(rawSafetensors('{"a": 1} trailing'), 'header_invalid_json');
    await expectError(rawSafetensors("{'a': 1}"), 'header_invalid_json');
  });

  test('a header that is not a JSON object', async () => {
    await expectError(rawSafetensors('[1, 2]'), 'header_not_object');
    await expectError(rawSafetensors('"text"'), 'header_not_object');
    await expectError(rawSafetensors('null'), 'header_not_object');
  });

  test('a duplicate top-level key (a tensor named twice)', async () => {
    const entry = JSON.stringify(f32x2([0, 8]));
    await expectError(rawSafetensors(`{"w":${entry},"w":${entry}}`, eightBytes), 'header_duplicate_key', 'w');
  });

  test('a duplicate field inside a tensor entry', async () => {
    const header = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"dtype":"I32"}}';
    const error = await expectError(rawSafetensors(header, eightBytes), 'tensor_duplicate_field', 'w');
    assert.match(error.message, /dtype/);
  });

  test('a duplicate key inside __metadata__', async () => {
    await expectError(rawSafetensors('{"__metadata__":{"a":"1","a":"2"}}'), 'metadata_invalid');
  });

  test('an unknown dtype', async () => {
    const header = headerText({ w: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } });
    const error = await expectError(rawSafetensors(header, eightBytes), 'tensor_unknown_dtype', 'w');
    assert.match(error.message, /C64/);
    await expectError(
      rawSafetensors(headerText({ w: { dtype: 'f32', shape: [2], data_offsets: [0, 8] } }), eightBytes),
      'tensor_unknown_dtype',
      'w',
    );
  });

  test('a negative shape dimension', async () => {
    const header = headerText({ w: { dtype: 'U8', shape: [-8], data_offsets: [0, 8] } });
    await expectError(rawSafetensors(header, eightBytes), 'tensor_invalid_shape', 'w');
  });

  test('a fractional shape dimension (including 2.0 and 2e0)', async () => {
    for (const dim of ['2.5', '2.0', '2e0']) {
      const header = `{"w":{"dtype":"F32","shape":[${dim}],"data_offsets":[0,8]}}`;
      await expectError(rawSafetensors(header, eightBytes), 'tensor_invalid_shape', 'w');
    }
  });

  test('a shape dimension that is not a safe integer, or whose product is not', async () => {
    const big = `{"w":{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,8]}}`;
    await expectError(rawSafetensors(big, eightBytes), 'tensor_invalid_shape', 'w');
    const product = headerText({
      w: { dtype: 'U8', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] },
    });
    await expectError(rawSafetensors(product, eightBytes), 'tensor_invalid_shape', 'w');
    const notArray = headerText({ w: { dtype: 'U8', shape: '8', data_offsets: [0, 8] } });
    await expectError(rawSafetensors(notArray, eightBytes), 'tensor_invalid_shape', 'w');
  });

  test('data_offsets that are not two non-negative safe integers', async () => {
    for (const offsets of ['[0]', '[0,8,16]', '[-0,8]', '[0,8.0]', '"0,8"', '[8,0]']) {
      const header = `{"w":{"dtype":"F32","shape":[2],"data_offsets":${offsets}}}`;
      await expectError(rawSafetensors(header, eightBytes), 'tensor_invalid_offsets', 'w');
    }
  });

  test('offsets that are not contiguous (a gap, or not starting at 0)', async () => {
    const gap = headerText({ a: f32x2([0, 8]), b: f32x2([12, 20]) });
    await expectError(rawSafetensors(gap, new Uint8Array(20)), 'tensor_offsets_gap', 'b');
    const late = headerText({ a: f32x2([4, 12]) });
    await expectError(rawSafetensors(late, new Uint8Array(12)), 'tensor_offsets_gap', 'a');
  });

  test('overlapping offsets (including two tensors sharing bytes)', async () => {
    const overlap = headerText({ a: f32x2([0, 8]), b: f32x2([4, 12]) });
    await expectError(rawSafetensors(overlap, new Uint8Array(12)), 'tensor_offsets_overlap', 'b');
    const aliased = headerText({ a: f32x2([0, 8]), b: f32x2([0, 8]) });
    await expectError(rawSafetensors(aliased, eightBytes), 'tensor_offsets_overlap');
  });

  test('offsets out of bounds of the data section', async () => {
    const header = headerText({ w: { dtype: 'U8', shape: [4096], data_offsets: [0, 4096] } });
    await expectError(rawSafetensors(header, new Uint8Array(16)), 'tensor_out_of_bounds', 'w');
  });

  test('a byte length that does not match dtype x shape', async () => {
    const header = headerText({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } });
    const error = await expectError(rawSafetensors(header, eightBytes), 'tensor_size_mismatch', 'w');
    assert.match(error.message, /12/);
  });

  test('trailing bytes after the last tensor', async () => {
    const header = headerText({ w: f32x2([0, 8]) });
    await expectError(rawSafetensors(header, new Uint8Array(9)), 'trailing_bytes');
    await expectError(rawSafetensors('{}', new Uint8Array(1)), 'trailing_bytes');
  });

  test('a __metadata__ that is not a string-to-string map', async () => {
    await expectError(rawSafetensors('{"__metadata__":{"n":1}}'), 'metadata_invalid');
    await expectError(rawSafetensors('{"__metadata__":"x"}'), 'metadata_invalid');
    await expectError(rawSafetensors('{"__metadata__":{"a":{"b":"c"}}}'), 'metadata_invalid');
  });

  test('an unknown extra field in a tensor entry', async () => {
    const header = headerText({ w: { ...f32x2([0, 8]), strides: [1] } });
    const error = await expectError(rawSafetensors(header, eightBytes), 'tensor_unknown_field', 'w');
    assert.match(error.message, /strides/);
  });

  test('a tensor entry missing a field, or not an object', async () => {
    await expectError(
      rawSafetensors(headerText({ w: { dtype: 'F32', shape: [2] } }), eightBytes),
      'tensor_missing_field',
      'w',
    );
    await expectError(rawSafetensors(headerText({ w: [1] }), eightBytes), 'tensor_entry_invalid', 'w');
  });

  test('JSON nested deeper than any header needs', async () => {
    await expectError(
      rawSafetensors(`{"__metadata__":${'['.repeat(10000)}${']'.repeat(10000)}}`),
      'header_invalid_json',
    );
  });

  test('a truncated file: data cut short on disk, and a file that shrinks after open', async () => {
    const header = headerText({ a: f32x2([0, 8]), b: f32x2([8, 16]) });
    const whole = rawSafetensors(header, new Uint8Array(16));
    await expectError(whole.subarray(0, whole.length - 5), 'tensor_out_of_bounds', 'b');
    await expectError(whole.subarray(0, 20), 'header_out_of_bounds');

    const file = fileOf(whole);
    const opened = await SafetensorsFile.open(file);
    try {
      truncateSync(file, whole.length - 4);
      await assert.rejects(opened.read('b'), (e: unknown) => {
        assert.ok(e instanceof SafetensorsError);
        assert.equal(e.code, 'file_truncated');
        assert.equal(e.tensor, 'b');
        assert.ok(e.message.includes(file) && e.message.includes("'b'"));
        return true;
      });
    } finally {
      await opened.close();
    }
  });
});

describe('SafetensorsFile.open accepts', () => {
  test('an empty header, zero-size tensors, keys named like Object.prototype members', async () => {
    const empty = await SafetensorsFile.open(fileOf(rawSafetensors('{}')));
    assert.deepEqual(empty.names(), []);
    await empty.close();
    const header =
      '{"__proto__":{"dtype":"U8","shape":[4],"data_offsets":[8,12]},' +
      '"constructor":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},' +
      `"toString":${JSON.stringify(f32x2([0, 8]))},"__metadata__":{"__proto__":"x"}}`;
    const file = await SafetensorsFile.open(fileOf(rawSafetensors(header, new Uint8Array(12).fill(7))));
    assert.deepEqual(file.names(), ['__proto__', 'constructor', 'toString']);
    assert.equal((await file.read('constructor')).data.length, 0);
    assert.deepEqual([...(await file.read('__proto__')).data], [7, 7, 7, 7]);
    assert.equal(Object.getOwnPropertyDescriptor(file.metadata, '__proto__')?.value, 'x');
    await file.close();
  });
});
