// Seeded random streams keyed by (seed, tensor name, stream name): every tensor's draws depend only
// on that key, never on the order tensors run in or on which thread runs them, so a recipe + seed
// gives bit-identical output on any machine. Keying: a 128-bit hash of the key (murmur3-style
// mixing), which seeds an sfc32 generator (32-bit integer ops only, so exact in JavaScript).
import type { RandomStream } from './method.ts';

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashKey(text: string): [number, number, number, number] {
  let h1 = 0x9e3779b9;
  let h2 = 0x243f6a88;
  let h3 = 0xb7e15162;
  let h4 = 0x85a308d3;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  return [mix32(h1 ^ text.length), mix32(h2 ^ h1), mix32(h3 ^ h2), mix32(h4 ^ h3)];
}

/** A uniform stream in [0, 1) with 32-bit resolution (sfc32). */
export class KeyedRandomStream implements RandomStream {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, tensorName: string, stream: string) {
    const high = Math.floor(seed / 0x100000000);
    const low = seed >>> 0;
    [this.a, this.b, this.c, this.d] = hashKey(`${high}:${low}\u0000${tensorName}\u0000${stream}`);
    // Warm-up: decorrelates streams whose keys differ in one character.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Fills `out` with the next out.length draws of nextUint32 (same sequence, state kept in locals). */
  fillUint32(out: Uint32Array): void {
    // |0: the seeded state holds uint32 values above 2^31 (doubles to V8); int32 locals keep the loop
    // integer-only (~5x faster per draw) and every operation below is mod 2^32, so the draws are unchanged.
    let a = this.a | 0;
    let b = this.b | 0;
    let c = this.c | 0;
    let d = this.d | 0;
    for (let i = 0; i < out.length; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      out[i] = t >>> 0;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }
}

/** The context's `random(stream)` for one tensor. */
export function randomForTensor(seed: number, tensorName: string): (stream: string) => KeyedRandomStream {
  return (stream) => new KeyedRandomStream(seed, tensorName, stream);
}
