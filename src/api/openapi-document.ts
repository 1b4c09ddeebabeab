// The OpenAPI document as YAML, exactly as scripts/generate-openapi.ts writes openapi.yaml.
import type { FastifyInstance } from 'fastify';

export function openApiYaml(app: FastifyInstance): string {
  return app.swagger({ yaml: true });
}
