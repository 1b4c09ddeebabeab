// Where a project's webhook secret comes from: an injected lookup, so API keys and projects can keep a secret
// per project. Until then, LORAFUSE_WEBHOOK_SECRET is the default project's and other projects have none.
import type { WebhookSettings } from '../config.ts';
import { DEFAULT_PROJECT } from '../queue/index.ts';

/** A project's webhook secret; undefined when it has none (its jobs cannot ask for webhooks). */
export type WebhookSecretSource = (project: string) => Promise<string | undefined>;

export function secretFromConfig(settings: WebhookSettings): WebhookSecretSource {
  return async (project) => (project === DEFAULT_PROJECT ? settings.secret : undefined);
}
