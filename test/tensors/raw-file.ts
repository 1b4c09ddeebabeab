// Builds safetensors files byte by byte for tests, including malformed ones.

import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** `[u64 little-endian header length][header text][data]`; `declaredLength` overrides the length field. */
export function rawSafetensors(
  header: string | Uint8Array,
  data: Uint8Array = new Uint8Array(0),
  declaredLength?: bigint,
): Buffer {
  const headerBytes = typeof header === 'string' ? Buffer.from(header, 'utf8') : Buffer.from(header);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(declaredLength ?? BigInt(headerBytes.length));
  return Buffer.concat([prefix, headerBytes, Buffer.from(data)]);
}

export function writeRaw(dir: string, name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

/** Header JSON text for `entries` (name -> entry), written in the order given. */
export function headerText(entries: Record<string, unknown>): string {
  return JSON.stringify(entries);
}
