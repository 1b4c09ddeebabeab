// The OpenAPI document is generated from the route schemas (@fastify/swagger), served at
// /openapi.json and browsable at /docs; scripts/generate-openapi.ts writes openapi.yaml from it.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { LORAFUSE_VERSION } from '../../store/index.ts';
import { SECURITY_SCHEME } from './auth.ts';

export default fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'lorafuse',
          version: LORAFUSE_VERSION,
          description:
            'Fuses fine-tuned models and LoRA adapters into one multi-task model: upload artifacts, queue merges, fine-tunes and evaluations, read jobs. Errors are application/problem+json.',
        },
        tags: [
          { name: 'models', description: 'Full checkpoints (Hugging Face layout, safetensors)' },
          { name: 'adapters', description: 'LoRA adapters (PEFT layout)' },
          { name: 'datasets', description: 'Labelled examples (safetensors, Hugging Face input names)' },
          { name: 'merges', description: 'Merge methods and merge requests' },
          { name: 'finetunes', description: 'LoRA, L-LoRA and full fine-tuning jobs' },
          { name: 'evaluations', description: 'Accuracy and loss of models and adapters on datasets' },
          { name: 'jobs', description: 'Queued work and its results' },
          { name: 'health', description: 'Liveness and readiness' },
          {
            name: 'operations',
            description: 'Metrics for Prometheus; the queue dashboard is at /admin/queues',
          },
          { name: 'access', description: "The caller's project and its API keys (admin scope)" },
        ],
        components: {
          securitySchemes: {
            [SECURITY_SCHEME]: {
              type: 'http',
              scheme: 'bearer',
              description:
                'An API key (`lorafuse keys create`): `Authorization: Bearer lfk_...`. Each operation lists the scope it needs (read, write or admin); a key sees only its own project.',
            },
          },
        },
      },
      refResolver: {
        // Shared schemas appear under components.schemas by their $id.
        buildLocalReference: (json, _baseUri, _fragment, i) =>
          typeof json.$id === 'string' ? json.$id : `def-${i}`,
      },
    });
    // swagger-ui's own CSP (hashes of its inline parts) for its pages, in place of the API's stricter one.
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'lorafuse-openapi', fastify: '5.x' },
);
