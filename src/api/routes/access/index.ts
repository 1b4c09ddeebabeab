// The caller's project and its keys, for admins of that project: GET /v1/project (with the webhook secret),
// GET/POST /v1/keys and DELETE /v1/keys/:id. A project's admin never sees another project's keys.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AccessError } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';

const ScopeSchema = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')], {
  description: 'read: GET routes; write: uploads, jobs, deletes; admin: keys and the project.',
});

const ApiKey = Type.Object({
  id: Type.String({ description: 'The public id (the 12 hex characters after lfk_); never the secret.' }),
  name: Type.String(),
  project: Type.String(),
  scopes: Type.Array(ScopeSchema),
  createdAt: Type.String({ format: 'date-time' }),
});

const Project = Type.Object({
  name: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  webhookSecret: Type.String({
    description: 'The HMAC-SHA256 key of this project’s webhook signatures. Admin scope only.',
  }),
});

const accessRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/project',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['access'],
        summary: "The caller's project, with its webhook secret",
        response: { 200: Project },
      },
    },
    async (request) => app.access.ensureProject(request.principal.project),
  );

  app.get(
    '/keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['access'],
        summary: "The project's API keys (ids, names, scopes; never the keys themselves)",
        response: { 200: Type.Object({ items: Type.Array(ApiKey) }) },
      },
    },
    async (request) => ({ items: await app.access.listKeys(request.principal.project) }),
  );

  app.post(
    '/keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'Make an API key of the project; the answer is the only time the key is shown',
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ maxLength: 200 })),
            scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 3, uniqueItems: true }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            key: Type.String({ description: 'lfk_<id>_<secret>: store it now, it cannot be read again.' }),
            record: ApiKey,
          }),
          ...problemResponses(400),
        },
      },
    },
    async (request, reply) => {
      const { token, key } = await app.access.createKey({
        project: request.principal.project,
        scopes: request.body.scopes,
        name: request.body.name,
      });
      return reply.code(201).header('cache-control', 'no-store').send({ key: token, record: key });
    },
  );

  app.delete(
    '/keys/:id',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'Revoke a key of the project at once',
        params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{12}$' }) }),
        response: { 204: { type: 'null', description: 'Revoked.' }, ...problemResponses(404) },
      },
    },
    async (request, reply) => {
      try {
        await app.access.revokeKey(request.params.id, request.principal.project);
      } catch (error) {
        if (error instanceof AccessError) {
          throw new ApiProblem('key-not-found', `no key with id ${request.params.id}`, {
            id: request.params.id,
          });
        }
        throw error;
      }
      return reply.code(204).send(null);
    },
  );
};

export default accessRoutes;
