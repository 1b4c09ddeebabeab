// How far lorafuse's merged model is from the reference's: max |difference| and the share of
// elements that differ, over every tensor (read one at a time, both decoded to F32).

import { Checkpoint } from '../../src/tensors/index.ts';

export async function compareOutputs(dirA: string, dirB: string): Promise<string> {
  const a = await Checkpoint.openFolder(dirA);
  const b = await Checkpoint.openFolder(dirB);
  try {
    let maxDiff = 0;
    let differing = 0;
    let total = 0;
    const missing = a.names().filter((n) => !b.has(n));
    for (const name of a.names()) {
      if (!b.has(name)) continue;
      const x = await a.readFloat32(name);
      const y = await b.readFloat32(name);
      if (x.length !== y.length) return `tensor ${name} has ${x.length} vs ${y.length} elements`;
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(x[i] - y[i]);
        if (d !== 0) differing++;
        if (d > maxDiff) maxDiff = d;
      }
      total += x.length;
    }
    const share = total ? ((differing / total) * 100).toFixed(4) : '0';
    return `max |lorafuse - reference| = ${maxDiff.toExponential(3)}, ${share}% of ${total} elements differ${missing.length ? `, ${missing.length} tensors missing in the reference` : ''}`;
  } finally {
    await a.close();
    await b.close();
  }
}
