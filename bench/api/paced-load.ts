// An open-loop HTTP load at a fixed rate, for the latency targets of bench:api. autocannon's rate option
// (`overallRate`) is not one: each connection sends its share of a second back to back as soon as the second
// starts and then waits (node_modules/autocannon/lib/httpClient.js, reqsMadeThisSecond), so "2,000 req/s" is
// a burst at full throttle every second; and its coordinated-omission correction records extra samples for an
// expected interval of ceil(1 / per-connection rate) = 1 ms (lib/run.js, recordValueWithExpectedInterval).
// Here request i is due at start + i / rate, evenly spaced, and its latency is counted from when it was due,
// not from when a connection was free to send it: a server that falls behind pays for the wait.
// Requests go over keep-alive connections as prebuilt bytes, so the generator costs little CPU beside the API.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface PacedLoadOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Requests per second. */
  rate: number;
  connections: number;
  durationSeconds: number;
}

export interface PacedLoadResult {
  /** Milliseconds from each request's due time to its whole response, ascending. */
  latencies: Float64Array;
  /**
   * Milliseconds from each request's due time to when the generator got to it (its own timer and event-loop
   * delay, ascending): the part of a latency that is the load generator's, not the server's.
   */
  generatorLag: Float64Array;
  sent: number;
  errors: number;
  non2xx: number;
  seconds: number;
}

/** The latency below which `fraction` of the requests finished (nearest rank). */
export function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

function requestBytes(options: PacedLoadOptions): Buffer {
  const url = new URL(options.url);
  const body = options.body === undefined ? null : Buffer.from(options.body);
  const lines = [`${options.method ?? 'GET'} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`);
  if (body) lines.push(`content-length: ${body.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
  return body ? Buffer.concat([head, body]) : head;
}

/** One keep-alive connection that sends one request at a time and reads responses by Content-Length. */
class Connection {
  private buffered: Buffer = Buffer.alloc(0);
  private due = 0;
  busy = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly done: (connection: Connection, due: number, status: number | null) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => this.fail());
    socket.on('close', () => this.fail());
  }

  send(bytes: Buffer, due: number): void {
    this.busy = true;
    this.due = due;
    this.socket.write(bytes);
  }

  private read(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const headEnd = this.buffered.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = this.buffered.subarray(0, headEnd).toString('latin1');
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    // The API answers every route measured here with a Content-Length; anything else counts as an error.
    if (!length) {
      this.fail();
      return;
    }
    const end = headEnd + 4 + Number(length[1]);
    if (this.buffered.length < end) return;
    this.buffered = this.buffered.subarray(end);
    this.busy = false;
    this.done(this, this.due, Number(head.slice(9, 12)));
  }

  private fail(): void {
    if (!this.busy) return;
    this.busy = false;
    this.done(this, this.due, null);
  }

  close(): void {
    this.socket.destroy();
  }
}

export async function pacedLoad(options: PacedLoadOptions): Promise<PacedLoadResult> {
  const url = new URL(options.url);
  const bytes = requestBytes(options);
  const latencies: number[] = [];
  const generatorLag: number[] = [];
  let errors = 0;
  let non2xx = 0;
  const waiting: number[] = []; // due times of requests no connection was free to send
  const idle: Connection[] = [];
  const onDone = (connection: Connection, due: number, status: number | null) => {
    latencies.push(performance.now() - due);
    if (status === null) errors++;
    else if (status < 200 || status >= 300) non2xx++;
    const next = waiting.shift();
    if (next !== undefined) connection.send(bytes, next);
    else idle.push(connection);
  };
  const connections = await Promise.all(
    Array.from(
      { length: options.connections },
      () =>
        new Promise<Connection>((resolve, reject) => {
          const socket = net.connect(Number(url.port), url.hostname, () =>
            resolve(new Connection(socket, onDone)),
          );
          socket.once('error', reject);
        }),
    ),
  );
  idle.push(...connections);

  const interval = 1000 / options.rate;
  const total = Math.round(options.rate * options.durationSeconds);
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const due = start + sent * interval;
        generatorLag.push(now - due);
        sent++;
        const connection = idle.pop();
        if (connection) connection.send(bytes, due);
        else waiting.push(due);
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
      else resolve();
    };
    tick();
  });
  // Let the last requests finish (a minute at most: a server that stops answering shows up as errors).
  const deadline = performance.now() + 60_000;
  while (latencies.length < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - start) / 1000;
  errors += sent - latencies.length;
  for (const connection of connections) connection.close();
  return {
    latencies: Float64Array.from(latencies).sort(),
    generatorLag: Float64Array.from(generatorLag).sort(),
    sent,
    errors,
    non2xx,
    seconds,
  };
}
