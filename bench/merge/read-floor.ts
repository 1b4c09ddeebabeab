// The I/O floor of a merge: read every input file once, sequentially, into one reused buffer.
// Run as a child of run.ts so its wall time and peak RSS are measured the same way as the merges.

import { open } from 'node:fs/promises';

const CHUNK = 16 << 20;

async function main(): Promise<void> {
  const files = process.argv.slice(2);
  const started = performance.now();
  const buffer = new Uint8Array(CHUNK);
  let total = 0;
  for (const file of files) {
    const handle = await open(file, 'r');
    try {
      while (true) {
        const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
    } finally {
      await handle.close();
    }
  }
  process.stderr.write(
    `${JSON.stringify({ bytes: total, seconds: (performance.now() - started) / 1000 })}\n`,
  );
}

await main();
