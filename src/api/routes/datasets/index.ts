// POST /v1/datasets (multipart upload of one dataset.safetensors) and the shared read routes.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { problemResponses } from '../../schemas.ts';
import { documentationOnlyBody } from '../artifacts/multipart-route.ts';
import { artifactReadRoutes } from '../artifacts/read-routes.ts';
import { multipartBody } from '../artifacts/schemas.ts';
import { receiveUpload } from '../artifacts/upload.ts';

const DatasetUpload = multipartBody('One file part named dataset.safetensors.', {
  'dataset.safetensors':
    'pixel_values F32 [N,C,H,W] or input_ids I64 [N,T] (attention_mask, token_type_ids I64 [N,T] optional), labels I64 [N]; metadata: split (train|validation|test), task, class_names (a JSON array).',
});

const datasetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/datasets',
    {
      validatorCompiler: documentationOnlyBody,
      schema: {
        tags: ['datasets'],
        summary: 'Upload a dataset',
        description:
          'Tensor names, dtypes and ranks, one example count N across tensors, labels in [0, number of class_names), split and task are checked before anything is stored; each failure is a 422 naming the tensor or metadata field.',
        consumes: ['multipart/form-data'],
        body: DatasetUpload,
        response: {
          201: Type.Ref('Artifact', { description: 'Stored.' }),
          ...problemResponses(400, 413, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const { upload } = await receiveUpload(request, request.store, 'dataset', app.config.uploads, []);
      try {
        const summary = await upload.inspect();
        const record = await upload.commit(summary, { lineage: null });
        return reply.code(201).header('location', `${app.prefix}/datasets/${record.id}`).send(record);
      } finally {
        await upload.discard();
      }
    },
  );

  await app.register(artifactReadRoutes, { kind: 'dataset', path: '/datasets', tag: 'datasets' });
};

export default datasetRoutes;
