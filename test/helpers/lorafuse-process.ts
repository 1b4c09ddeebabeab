// A `lorafuse` command started as a child process that the test talks to while it runs (a server, a worker,
// a long study): its stdout and stderr kept together for waits and failure messages, and its exit awaitable.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { HANG_GUARD_MS, waitFor } from './wait.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/lorafuse.js');

export interface LorafuseProcess {
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr interleaved as they arrived. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once its stdout and stderr are closed too: `output()` then holds all it ever wrote. */
  drained: Promise<void>;
}

/**
 * Starts `lorafuse ...args` with `env` over the test's own environment. `detached` gives it its own process
 * group, so that `process.kill(-pid)` takes its forked children with it.
 */
export function spawnLorafuse(
  args: string[],
  env: Record<string, string>,
  options: { detached?: boolean } = {},
): LorafuseProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    detached: options.detached ?? false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // 'exit' can come before the last chunks of a pipe are read; 'close' comes after them.
  const drained = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { child, output: () => output, exited, drained };
}

/**
 * Polls its output until `pattern` matches and returns the match; fails with the output so far if the process
 * exits first or the hang guard passes.
 */
export async function waitForOutput(
  running: LorafuseProcess,
  what: string,
  pattern: RegExp,
  timeoutMs = HANG_GUARD_MS,
): Promise<RegExpExecArray> {
  try {
    return await waitFor(
      what,
      async () => {
        if (running.child.exitCode !== null || running.child.signalCode !== null)
          throw new Error(`exited before ${what}`);
        return pattern.exec(running.output());
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}:\n${running.output()}`);
  }
}
