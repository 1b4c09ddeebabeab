// Sizes as transformers' `max_shard_size` and mergekit's `--max-shard-size` write them ("5GB", "500MB",
// "2GiB" or a plain byte count): decimal units for KB/MB/GB/TB, binary for KiB/MiB/GiB/TiB.
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/** "5GB" -> 5e9; throws an Error naming the text when it is no size. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  const unit = match ? SIZE_UNITS[match[2].toUpperCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`invalid size "${text}" (e.g. 5GB, 500MB, 2GiB)`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (!(bytes > 0)) throw new Error(`size "${text}" must be positive`);
  if (!Number.isSafeInteger(bytes)) throw new Error(`size "${text}" is too large`);
  return bytes;
}
