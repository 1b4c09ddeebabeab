// Multipart routes read their body part by part in the handler, so Fastify must not validate it;
// the body schema is kept for the OpenAPI document only.
import type { FastifySchemaCompiler } from 'fastify';

export const documentationOnlyBody: FastifySchemaCompiler<unknown> = () => () => true;
