// Runs a command as a child process and measures its wall time, peak RSS and user/system CPU time:
// through `/usr/bin/time` when it exists, else by polling VmHWM and reading the child's CPU times from
// /proc/<pid>/stat (a last poll before it is reaped).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface Measurement {
  wallSeconds: number;
  peakRssBytes: number;
  /** CPU time of the child (all its threads), in user space and in the kernel. */
  userSeconds: number;
  systemSeconds: number;
  /** The last line the child wrote to stderr, parsed when it is JSON (our children report there). */
  report: Record<string, unknown> | null;
}

const GNU_TIME = '/usr/bin/time';

export async function measure(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<Measurement> {
  const useTime = existsSync(GNU_TIME);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'lorafuse-bench-'));
  const timeFile = path.join(scratch, 'time.txt');
  const [file, argv] = useTime
    ? [GNU_TIME, ['-f', '%e %M %U %S', '-o', timeFile, command, ...args]]
    : [command, args];
  const started = performance.now();
  const child = spawn(file, argv, { cwd: options.cwd, stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 16));
  });
  let polledPeak = 0;
  let polledCpu = [0, 0];
  const ticks = 100; // USER_HZ on Linux
  const poll = useTime
    ? undefined
    : setInterval(() => {
        try {
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          const match = /VmHWM:\s+(\d+) kB/.exec(status);
          if (match) polledPeak = Math.max(polledPeak, Number(match[1]) * 1024);
          const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          polledCpu = [Number(fields[11]) / ticks, Number(fields[12]) / ticks];
        } catch {
          // the child has exited between two polls
        }
      }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const wallSeconds = (performance.now() - started) / 1000;
  if (poll) clearInterval(poll);
  let peakRssBytes = polledPeak;
  let [userSeconds, systemSeconds] = polledCpu;
  if (useTime) {
    const [, maxRssKb, user, system] = (await readFile(timeFile, 'utf8'))
      .trim()
      .split('\n')
      .at(-1)!
      .split(' ');
    peakRssBytes = Number(maxRssKb) * 1024;
    userSeconds = Number(user);
    systemSeconds = Number(system);
  }
  await rm(scratch, { recursive: true, force: true });
  if (code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr.slice(-4000)}`);
  }
  const lastLine = stderr.trim().split('\n').at(-1) ?? '';
  let report: Record<string, unknown> | null = null;
  try {
    report = JSON.parse(lastLine);
  } catch {
    report = null;
  }
  return { wallSeconds, peakRssBytes, userSeconds, systemSeconds, report };
}
