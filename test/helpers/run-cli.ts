// `bin/lorafuse.js` run to its end as a user would run it, its exit code and both output streams kept for the
// test to assert on; one hang guard so a command that never exits fails its test instead of stalling the run.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { HANG_GUARD_MS } from './wait.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/lorafuse.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** More environment over the test's own (an empty string still sets the variable, to empty). */
  env?: Record<string, string>;
  cwd?: string;
  /** SIGKILLs the command and fails past this; only guards against a hang. */
  timeoutMs?: number;
}

/** Runs `lorafuse ...args` and resolves once it exited and its output streams closed. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? HANG_GUARD_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lorafuse ${args.join(' ')} ran past ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
