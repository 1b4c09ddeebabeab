// Tests never assert on speed (speed targets live in bench/): where a test waits for something, it
// polls with one generous deadline that only guards against a hang, because the machine running the
// tests may be shared and loaded many times over.
export const HANG_GUARD_MS = 5 * 60_000;

/** Polls `probe` until it returns a truthy value; fails only past `timeoutMs` (a hang). */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = HANG_GUARD_MS,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** `promise`, or a failure naming `what` once the hang guard has passed. */
export async function beforeHang<T>(
  what: string,
  promise: Promise<T>,
  timeoutMs = HANG_GUARD_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}
