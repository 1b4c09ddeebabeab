// Which callback URLs a job may carry: http or https, at most 2048 characters, no credentials (they would
// sit in job data and logs) and no fragment. Loopback, private, link-local and other non-public addresses are
// refused unless the deployment allows them: as IP literals here, and again after DNS resolution at delivery
// time (deliver.ts), so a name that resolves to an internal address is refused too.
import { BlockList, isIP } from 'node:net';

export const MAX_CALLBACK_URL_LENGTH = 2048;

export class CallbackUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallbackUrlError';
  }
}

const NON_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, 'ipv6');
}

/** True for an address a public webhook must not reach (IPv4-mapped IPv6 is judged as its IPv4). */
export function isNonPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return NON_PUBLIC.check(mapped[1], 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return NON_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The URL a job may call back, or a CallbackUrlError saying why not. */
export function validateCallbackUrl(raw: string, options: { allowPrivateAddresses: boolean }): URL {
  if (raw.length > MAX_CALLBACK_URL_LENGTH) {
    throw new CallbackUrlError(`callback_url: at most ${MAX_CALLBACK_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CallbackUrlError('callback_url: not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CallbackUrlError(`callback_url: scheme ${url.protocol} is not allowed (http or https only)`);
  }
  if (url.username || url.password) {
    throw new CallbackUrlError('callback_url: must not carry credentials (the signature authenticates us)');
  }
  if (url.hash) throw new CallbackUrlError('callback_url: must not have a fragment');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!options.allowPrivateAddresses) {
    if (isIP(host) !== 0 && isNonPublicAddress(host)) {
      throw new CallbackUrlError(`callback_url: ${host} is not a public address`);
    }
    if (host === 'localhost' || host.endsWith('.localhost')) {
      throw new CallbackUrlError(`callback_url: ${host} is not a public address`);
    }
  }
  return url;
}
