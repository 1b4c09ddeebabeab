// POST /v1/models (multipart upload of a Hugging Face model folder) and the shared read routes.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { problemResponses } from '../../schemas.ts';
import { documentationOnlyBody } from '../artifacts/multipart-route.ts';
import { artifactReadRoutes } from '../artifacts/read-routes.ts';
import { multipartBody } from '../artifacts/schemas.ts';
import { receiveUpload } from '../artifacts/upload.ts';

const ModelUpload = multipartBody('One file part per file, each named by its file name.', {
  'model.safetensors': 'The weights (or shards model-00001-of-0000N.safetensors with the index).',
  'model.safetensors.index.json': 'The shard index, when the weights are sharded.',
  'config.json': 'The Hugging Face config (optional).',
});

const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/models',
    {
      validatorCompiler: documentationOnlyBody,
      schema: {
        tags: ['models'],
        summary: 'Upload a model',
        description:
          'Every safetensors header and the shard index are validated before anything is stored; identical files are stored once.',
        consumes: ['multipart/form-data'],
        body: ModelUpload,
        response: {
          201: Type.Ref('Artifact', { description: 'Stored.' }),
          ...problemResponses(400, 413, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const { upload } = await receiveUpload(request, request.store, 'model', app.config.uploads, []);
      try {
        const summary = await upload.inspect();
        const record = await upload.commit(summary, { lineage: null });
        return reply.code(201).header('location', `${app.prefix}/models/${record.id}`).send(record);
      } finally {
        await upload.discard();
      }
    },
  );

  await app.register(artifactReadRoutes, { kind: 'model', path: '/models', tag: 'models' });
};

export default modelRoutes;
