// The routes models and adapters share: list, get, delete (refused while a pending job reads the
// artifact) and file download.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { type ArtifactRecord, type StoredArtifactKind, kindOfId } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { sendArtifactFile } from './download.ts';
import { ArtifactListQuery, ArtifactPage, ArtifactParams, FileParams } from './schemas.ts';

export interface ArtifactRoutesOptions {
  kind: StoredArtifactKind;
  /** e.g. `/models` (under the API's `/v1` prefix) */
  path: string;
  tag: string;
}

export const artifactReadRoutes: FastifyPluginAsyncTypebox<ArtifactRoutesOptions> = async (
  app,
  { kind, path, tag },
) => {
  /** The caller's project's record; another project's id reads as unknown (404, never 403). */
  async function load(request: FastifyRequest, id: string): Promise<ArtifactRecord> {
    const record = kindOfId(id) === kind ? await request.store.get(id) : null;
    if (!record) throw new ApiProblem('artifact-not-found', `no ${kind} with id ${id}`, { id });
    return record;
  }

  app.get(
    path,
    {
      schema: {
        tags: [tag],
        summary: `List ${kind}s, newest first, or find one by content digest`,
        querystring: ArtifactListQuery,
        response: { 200: ArtifactPage, ...problemResponses(400) },
      },
    },
    async (request) => {
      const { limit, cursor, digest } = request.query;
      if (digest === undefined) return request.store.list(kind, { limit, cursor });
      const record = await request.store.findByDigest(kind, digest);
      return { items: record ? [record] : [], nextCursor: null };
    },
  );

  app.get(
    `${path}/:id`,
    {
      schema: {
        tags: [tag],
        summary: `Get one ${kind}`,
        params: ArtifactParams,
        response: { 200: Type.Ref('Artifact', { description: 'The record.' }), ...problemResponses(404) },
      },
    },
    async (request) => load(request, request.params.id),
  );

  app.delete(
    `${path}/:id`,
    {
      schema: {
        tags: [tag],
        summary: `Delete a ${kind} and the files no other artifact uses`,
        description: 'Refused with 409 while a queued or active job reads it.',
        params: ArtifactParams,
        response: { 204: { type: 'null', description: 'Deleted.' }, ...problemResponses(404, 409) },
      },
    },
    async (request, reply) => {
      const record = await load(request, request.params.id);
      const outcome = await request.store.deleteUnlessUsed(record.id, (id) => app.jobs.jobsUsingArtifact(id));
      if (outcome.busy) {
        throw new ApiProblem('artifact-in-use', `${record.id} is being deleted by another request`, {
          id: record.id,
          jobs: [],
        });
      }
      if (outcome.jobs.length > 0) {
        throw new ApiProblem(
          'artifact-in-use',
          `${record.id} is an input of ${outcome.jobs.length} pending job(s)`,
          { id: record.id, jobs: outcome.jobs },
        );
      }
      if (!outcome.deleted) {
        throw new ApiProblem('artifact-not-found', `no ${kind} with id ${record.id}`, { id: record.id });
      }
      return reply.code(204).send(null);
    },
  );

  app.get(
    `${path}/:id/files/:name`,
    {
      schema: {
        tags: [tag],
        summary: `Download one file of a ${kind}`,
        description:
          'Streams the bytes with Content-Length and ETag (the sha256); honours If-None-Match (304) and a single Range (206, 416).',
        params: FileParams,
        headers: {
          type: 'object',
          properties: {
            range: { type: 'string', description: 'bytes=start-end' },
            'if-none-match': { type: 'string' },
            'if-range': { type: 'string' },
          },
        },
        response: {
          200: { description: 'The file.', type: 'string', format: 'binary' },
          206: { description: 'The requested range.', type: 'string', format: 'binary' },
          304: { description: 'Not modified.', type: 'null' },
          ...problemResponses(404, 416),
        },
      },
    },
    async (request, reply) => {
      const record = await load(request, request.params.id);
      const file = record.files.find((candidate) => candidate.name === request.params.name);
      if (!file) {
        throw new ApiProblem('file-not-found', `${record.id} has no file ${request.params.name}`, {
          id: record.id,
          file: request.params.name,
        });
      }
      return sendArtifactFile(request, reply, file, (range) =>
        app.store.blobs.readStream(file.sha256, range),
      );
    },
  );
};
