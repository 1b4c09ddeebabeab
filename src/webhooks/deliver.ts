// One webhook attempt: POST the signed body, follow no redirect, give up after the timeout. The address the
// socket connects to is checked after DNS resolution (a custom lookup), so a public name that resolves to an
// internal address is refused like an internal IP literal, rebinding included.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { isNonPublicAddress } from './callback-url.ts';

export interface WebhookAttempt {
  /** The receiver's status; null when no response came. */
  status: number | null;
  /** Why the attempt failed (null on a 2xx). */
  error: string | null;
  durationMs: number;
}

export interface PostOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  allowPrivateAddresses: boolean;
}

/** Reads at most this much of a receiver's answer (its content is not kept). */
const MAX_RESPONSE_BYTES = 64 * 1024;

function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as LookupAddress[];
      const blocked = allowPrivate ? undefined : list.find((entry) => isNonPublicAddress(entry.address));
      if (blocked) {
        const refusal = Object.assign(
          new Error(`${hostname} resolves to non-public address ${blocked.address}`),
          {
            code: 'EWEBHOOKADDRESS',
          },
        );
        return callback(refusal, '', 0);
      }
      if ((options as { all?: boolean }).all)
        return (callback as (e: null, a: LookupAddress[]) => void)(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  };
}

export function postWebhook(options: PostOptions): Promise<WebhookAttempt> {
  const started = performance.now();
  const url = new URL(options.url);
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, error, durationMs: Math.round(performance.now() - started) });
    };
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...options.headers, 'content-length': Buffer.byteLength(options.body) },
        lookup: guardedLookup(options.allowPrivateAddresses),
        agent: false,
      },
      (response) => {
        let read = 0;
        response.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) response.destroy();
        });
        const status = response.statusCode ?? null;
        const done = () => {
          if (status !== null && status >= 200 && status < 300) finish(status, null);
          else if (status !== null && status >= 300 && status < 400) {
            finish(status, `redirect to ${response.headers.location ?? '?'} not followed`);
          } else finish(status, `receiver answered ${status}`);
        };
        response.on('end', done);
        response.on('close', done);
        response.on('error', done);
      },
    );
    const timer = setTimeout(() => {
      request.destroy(new Error(`no answer within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    request.on('error', (error) => finish(null, error.message));
    request.end(options.body);
  });
}
