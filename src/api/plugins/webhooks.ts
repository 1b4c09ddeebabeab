// The webhook secret lookup the job routes check a callback_url against: a project without a secret cannot
// ask for webhooks (they could not be signed). Injected, so API keys and projects can keep one per project.
import fp from 'fastify-plugin';
import type { WebhookSecretSource } from '../../webhooks/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    webhookSecret: WebhookSecretSource;
  }
}

export default fp<{ secret: WebhookSecretSource }>(
  async (app, options) => {
    app.decorate('webhookSecret', options.secret);
  },
  { name: 'lorafuse-webhooks', fastify: '5.x' },
);
