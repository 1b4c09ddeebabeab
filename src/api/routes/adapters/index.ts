// POST /v1/adapters (multipart upload of a PEFT LoRA folder, optionally checked against a base
// model already stored) and the shared read routes.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { kindOfId } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { documentationOnlyBody } from '../artifacts/multipart-route.ts';
import { artifactReadRoutes } from '../artifacts/read-routes.ts';
import { multipartBody } from '../artifacts/schemas.ts';
import { receiveUpload } from '../artifacts/upload.ts';
import { checkPeftAdapter } from './peft-check.ts';

const AdapterUpload = multipartBody(
  'One file part per file, each named by its file name; base_model is a text field.',
  {
    'adapter_config.json': "PEFT's adapter config.",
    'adapter_model.safetensors': "PEFT's LoRA weights.",
    'lorafuse.json': "lorafuse's extras (optional).",
    'lorafuse_init.safetensors': 'The expansion point A0/B0 of an L-LoRA adapter (optional).',
    base_model: 'A model id: every LoRA module must exist in it with matching shapes (optional).',
  },
);

const adapterRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/adapters',
    {
      validatorCompiler: documentationOnlyBody,
      schema: {
        tags: ['adapters'],
        summary: 'Upload a LoRA adapter',
        description:
          'Validated before anything is stored; with base_model, a module missing in the base or of the wrong shape is a 422 naming it.',
        consumes: ['multipart/form-data'],
        body: AdapterUpload,
        response: {
          201: Type.Ref('Artifact', { description: 'Stored.' }),
          ...problemResponses(400, 413, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const { upload, fields } = await receiveUpload(request, request.store, 'adapter', app.config.uploads, [
        'base_model',
      ]);
      try {
        const summary = await upload.inspect();
        const baseModelId = fields.base_model?.trim() || null;
        const base =
          baseModelId && kindOfId(baseModelId) === 'model' ? await request.store.get(baseModelId) : null;
        if (baseModelId && !base) {
          throw new ApiProblem('unknown-artifact', `base_model ${baseModelId} is not a stored model`, {
            artifacts: [baseModelId],
          });
        }
        await checkPeftAdapter(request.store, upload.filePaths(), base);
        const record = await upload.commit(summary, { lineage: null, baseModel: baseModelId });
        return reply.code(201).header('location', `${app.prefix}/adapters/${record.id}`).send(record);
      } finally {
        await upload.discard();
      }
    },
  );

  await app.register(artifactReadRoutes, { kind: 'adapter', path: '/adapters', tag: 'adapters' });
};

export default adapterRoutes;
