// Streams one artifact file: Content-Length, a strong ETag (the sha256), If-None-Match -> 304,
// and single byte ranges (206 / 416). Several ranges are answered with the whole file, as RFC 9110
// allows, rather than with multipart/byteranges.
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ArtifactFile } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';

export type ByteRange = { start: number; end: number } | 'unsatisfiable' | null;

/** Parses a Range header against a size; null means "ignore it and send everything". */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (match[2] !== '' && Number(match[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

/** Opens the file's bytes, or the inclusive `range` of them (a local file or a ranged GET from S3). */
export type OpenBlob = (range?: { start: number; end: number }) => Promise<Readable>;

export async function sendArtifactFile(
  request: FastifyRequest,
  reply: FastifyReply,
  file: ArtifactFile,
  open: OpenBlob,
): Promise<FastifyReply> {
  const etag = `"${file.sha256}"`;
  reply
    .header('etag', etag)
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'private, max-age=31536000, immutable')
    .header('content-disposition', `attachment; filename="${file.name}"`)
    .type(file.name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch && etagMatches(ifNoneMatch, etag)) return reply.code(304).send();
  const ifRange = request.headers['if-range'];
  const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.range, file.size);
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${file.size}`);
    throw new ApiProblem('range-not-satisfiable', `the file has ${file.size} bytes`, { size: file.size });
  }
  if (range) {
    reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${file.size}`)
      .header('content-length', range.end - range.start + 1);
    return reply.send(await open(range));
  }
  reply.header('content-length', file.size);
  if (file.size === 0) return reply.send('');
  return reply.send(await open());
}
