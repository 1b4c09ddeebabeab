// The merge's working set: one buffer allocated once per merge, carved into per-tensor slots (the
// stored inputs as read, then the encoded output) that are freed in the order they were taken. The
// executor writes tensors in plan order, so slots come and go first-in first-out and a ring serves:
// after the first lap every read and every output lands in pages that are already mapped.

/** Slot boundaries sit on cache lines, which also aligns every element type's view. */
const ALIGN = 64;

export function alignSlot(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

export class RingArena {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly capacity: number;
  /** Live slots, oldest first. */
  readonly #live: Array<{ start: number; end: number }> = [];

  /** `shared`: a SharedArrayBuffer, so worker threads read inputs and write outputs in place. */
  constructor(capacity: number, shared: boolean) {
    this.capacity = alignSlot(Math.max(ALIGN, capacity));
    this.buffer = shared ? new SharedArrayBuffer(this.capacity) : new ArrayBuffer(this.capacity);
  }

  /** The start of a free slot of `bytes`, or undefined while older slots still hold the room. */
  allocate(bytes: number): number | undefined {
    const size = alignSlot(Math.max(1, bytes));
    if (size > this.capacity)
      throw new RangeError(`a ${size}-byte slot exceeds the ${this.capacity}-byte arena`);
    const live = this.#live;
    let start: number | undefined;
    if (live.length === 0) start = 0;
    else {
      const oldest = live[0].start;
      const newest = live[live.length - 1];
      const wrapped = newest.start < oldest;
      if (wrapped) {
        if (newest.end + size <= oldest) start = newest.end;
      } else if (newest.end + size <= this.capacity) start = newest.end;
      else if (size <= oldest) start = 0;
    }
    if (start !== undefined) live.push({ start, end: start + size });
    return start;
  }

  /** Frees the oldest slot (which must be the one starting at `start`). */
  release(start: number): void {
    const oldest = this.#live[0];
    if (!oldest || oldest.start !== start) throw new Error('arena slots are released oldest first');
    this.#live.shift();
  }

  get liveSlots(): number {
    return this.#live.length;
  }
}
