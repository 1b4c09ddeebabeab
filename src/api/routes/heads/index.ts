// POST /v1/heads (multipart upload of one head.safetensors: a task's linear head) and the shared read routes.
// A stored head is how a task reads a shared body when its adapter carries none (CLIP zero-shot heads, say).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { problemResponses } from '../../schemas.ts';
import { documentationOnlyBody } from '../artifacts/multipart-route.ts';
import { artifactReadRoutes } from '../artifacts/read-routes.ts';
import { multipartBody } from '../artifacts/schemas.ts';
import { receiveUpload } from '../artifacts/upload.ts';

const HeadUpload = multipartBody('One file part named head.safetensors.', {
  'head.safetensors':
    'weight [classes, features] and optionally bias [classes], floating point: logits = x·weightᵀ + bias, applied where the model applies its `classifier`.',
});

const headRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/heads',
    {
      validatorCompiler: documentationOnlyBody,
      schema: {
        tags: ['heads'],
        summary: 'Upload a task head',
        description:
          'A linear task head (the `head` of an evaluation task, or of POST /v1/evaluations). Only `weight` and `bias` tensors are accepted; shapes are checked (422 invalid-head). The record carries head: {classes, features, bias}.',
        consumes: ['multipart/form-data'],
        body: HeadUpload,
        response: {
          201: Type.Ref('Artifact', { description: 'Stored.' }),
          ...problemResponses(400, 413, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const { upload } = await receiveUpload(request, request.store, 'head', app.config.uploads, []);
      try {
        const summary = await upload.inspect();
        const record = await upload.commit(summary, { lineage: null });
        return reply.code(201).header('location', `${app.prefix}/heads/${record.id}`).send(record);
      } finally {
        await upload.discard();
      }
    },
  );

  await app.register(artifactReadRoutes, { kind: 'head', path: '/heads', tag: 'heads' });
};

export default headRoutes;
