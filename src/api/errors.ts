// Every error the API answers with is made here: RFC 9457 problem details with a stable `type`
// per kind of error. Routes throw ApiProblem (or a coded error this file maps); the central
// handler turns anything else into a 500 whose detail never carries the internal message.
import { AdapterError, MergePlanError, RecipeError } from '../merge/index.ts';
import {
  IdempotencyKeyReuseError,
  InvalidCursorError as InvalidJobCursorError,
  JobNotCancellableError,
  JobNotFoundError,
} from '../queue/index.ts';
import {
  ArtifactValidationError,
  InvalidCursorError as InvalidArtifactCursorError,
  UploadTooLargeError,
} from '../store/index.ts';

export const PROBLEM_BASE = 'https://lorafuse.dev/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The stable problem types, each with its status and title. */
export const PROBLEMS = {
  'not-found': { status: 404, title: 'Not Found' },
  'artifact-not-found': { status: 404, title: 'Artifact not found' },
  'job-not-found': { status: 404, title: 'Job not found' },
  'file-not-found': { status: 404, title: 'File not found' },
  'report-not-found': { status: 404, title: 'Report not found' },
  'key-not-found': { status: 404, title: 'API key not found' },
  'invalid-request': { status: 400, title: 'Invalid request' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'invalid-cursor': { status: 400, title: 'Invalid cursor' },
  'invalid-upload': { status: 400, title: 'Invalid upload' },
  'unexpected-file': { status: 400, title: 'Unexpected file' },
  'duplicate-file': { status: 400, title: 'Duplicate file' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'range-not-satisfiable': { status: 416, title: 'Range not satisfiable' },
  'missing-file': { status: 422, title: 'Missing file' },
  'invalid-safetensors': { status: 422, title: 'Invalid safetensors file' },
  'invalid-json': { status: 422, title: 'Invalid JSON file' },
  'invalid-index': { status: 422, title: 'Invalid shard index' },
  'ambiguous-checkpoint': { status: 422, title: 'Ambiguous checkpoint' },
  'invalid-adapter': { status: 422, title: 'Invalid adapter' },
  'invalid-dataset': { status: 422, title: 'Invalid dataset' },
  'invalid-head': { status: 422, title: 'Invalid head' },
  'invalid-report': { status: 422, title: 'Invalid report' },
  'invalid-evaluation': { status: 422, title: 'Invalid evaluation or search' },
  'head-class-mismatch': { status: 422, title: 'Head does not answer the dataset classes' },
  'model-not-runnable': { status: 422, title: 'Model cannot be run' },
  'invalid-finetune': { status: 422, title: 'Invalid fine-tune request' },
  'invalid-analysis': { status: 422, title: 'Invalid analysis request' },
  'adapter-base-mismatch': { status: 422, title: 'Adapter does not fit the base model' },
  'invalid-recipe': { status: 422, title: 'Invalid recipe' },
  'unknown-artifact': { status: 422, title: 'Unknown artifact' },
  'invalid-merge': { status: 422, title: 'Merge cannot be planned' },
  'limit-exceeded': { status: 422, title: 'Request over a configured limit' },
  'invalid-callback-url': { status: 422, title: 'Invalid callback URL' },
  'webhooks-not-configured': { status: 422, title: 'Webhooks are not configured' },
  'admin-disabled': { status: 403, title: 'Admin access is not enabled' },
  'artifact-in-use': { status: 409, title: 'Artifact in use' },
  'job-not-cancellable': { status: 409, title: 'Job cannot be cancelled' },
  'idempotency-key-reused': { status: 409, title: 'Idempotency key reused' },
  'not-ready': { status: 503, title: 'Service not ready' },
  'dependency-unavailable': { status: 503, title: 'A dependency is unavailable' },
  'insufficient-storage': { status: 507, title: 'Insufficient storage' },
  'internal-error': { status: 500, title: 'Internal Server Error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemKind = keyof typeof PROBLEMS;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** An error that is already a problem: thrown by routes, rendered as-is by the error handler. */
export class ApiProblem extends Error {
  readonly kind: ProblemKind;
  readonly status: number;
  readonly extensions: Record<string, unknown>;
  constructor(kind: ProblemKind, detail: string, extensions: Record<string, unknown> = {}) {
    super(detail);
    this.name = 'ApiProblem';
    this.kind = kind;
    this.status = PROBLEMS[kind].status;
    this.extensions = extensions;
  }
}

export function problemBody(problem: ApiProblem, instance: string): ProblemBody {
  const { status, title } = PROBLEMS[problem.kind];
  const body: ProblemBody = {
    type: PROBLEM_BASE + problem.kind,
    title,
    status,
    detail: problem.message,
    instance,
  };
  for (const [key, value] of Object.entries(problem.extensions)) if (value !== undefined) body[key] = value;
  return body;
}

/** Store validation codes that are problem kinds of their own; the rest are "invalid-upload". */
const STORE_CODES = new Set<string>([
  'unexpected-file',
  'duplicate-file',
  'missing-file',
  'invalid-safetensors',
  'invalid-json',
  'invalid-index',
  'ambiguous-checkpoint',
  'invalid-adapter',
  'invalid-dataset',
  'invalid-head',
  'invalid-report',
]);

interface FastifyLikeError extends Error {
  code?: string;
  statusCode?: number;
  validation?: Array<{ instancePath?: string; message?: string; keyword?: string; params?: unknown }>;
  validationContext?: string;
}

/** Maps any thrown value to a problem; `null` means "unexpected": the handler answers 500. */
export function toProblem(error: unknown): ApiProblem | null {
  if (error instanceof ApiProblem) return error;
  if (error instanceof ArtifactValidationError) {
    const kind = (STORE_CODES.has(error.code) ? error.code : 'invalid-upload') as ProblemKind;
    return new ApiProblem(kind, error.message, {
      file: error.file,
      tensor: error.tensor,
      module: error.module,
      field: error.field,
    });
  }
  if (error instanceof RecipeError) {
    return new ApiProblem('invalid-recipe', error.message, {
      code: error.code,
      path: error.path,
      errors: [{ path: error.path, message: error.message }],
    });
  }
  if (error instanceof MergePlanError) {
    return new ApiProblem('invalid-merge', error.message, {
      code: error.code,
      tensor: error.tensor,
      parameter: error.parameter,
      model: error.model,
      path: error.path,
    });
  }
  if (error instanceof AdapterError) {
    const kind = error.code === 'base_mismatch' ? 'adapter-base-mismatch' : 'invalid-adapter';
    return new ApiProblem(kind, error.message, { code: error.code, module: error.module });
  }
  if (error instanceof UploadTooLargeError) {
    return new ApiProblem('payload-too-large', error.message, { file: error.file, limit: error.limit });
  }
  if (error instanceof InvalidArtifactCursorError || error instanceof InvalidJobCursorError) {
    return new ApiProblem('invalid-cursor', error.message);
  }
  if (error instanceof JobNotFoundError)
    return new ApiProblem('job-not-found', error.message, { id: error.jobId });
  if (error instanceof JobNotCancellableError) {
    return new ApiProblem('job-not-cancellable', error.message, { state: error.state });
  }
  if (error instanceof IdempotencyKeyReuseError) {
    return new ApiProblem('idempotency-key-reused', error.message, { jobId: error.jobId });
  }
  if (!(error instanceof Error)) return null;
  const infrastructure = infrastructureProblem(error);
  if (infrastructure) return infrastructure;
  const fastifyError = error as FastifyLikeError;
  if (fastifyError.validation) {
    const where = fastifyError.validationContext ?? 'request';
    return new ApiProblem(
      'invalid-request',
      `${where} ${fastifyError.message.replace(/^\w+\//, '')}`.trim(),
      {
        errors: fastifyError.validation.map((issue) => ({
          path: `${where}${issue.instancePath ?? ''}`,
          message: issue.message ?? 'is invalid',
        })),
      },
    );
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new ApiProblem('unsupported-media-type', 'this route does not accept that Content-Type');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ApiProblem('payload-too-large', fastifyError.message);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_PROTO_VIOLATION':
    case 'FST_INVALID_JSON_FIELD_ERROR':
      return new ApiProblem('invalid-request', fastifyError.message);
  }
  // Other 4xx raised by Fastify or its plugins carry client-facing messages.
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    if (fastifyError.statusCode === 413) return new ApiProblem('payload-too-large', fastifyError.message);
    if (fastifyError.statusCode === 415)
      return new ApiProblem('unsupported-media-type', fastifyError.message);
    if (fastifyError.statusCode === 404) return new ApiProblem('not-found', fastifyError.message);
    return new ApiProblem('invalid-request', fastifyError.message);
  }
  // A multipart body cut short by the client.
  if (/terminated early|Unexpected end of (multipart|form)|premature close/i.test(fastifyError.message)) {
    return new ApiProblem('invalid-upload', 'the upload ended before its last part was complete');
  }
  return null;
}

/** Seconds a client should wait before retrying a request refused for an unreachable Redis. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

/** 5xx kinds whose detail is safe to send (they describe the service's state, not its internals). */
export const PUBLIC_SERVER_PROBLEMS: ReadonlySet<ProblemKind> = new Set([
  'not-ready',
  'dependency-unavailable',
  'insufficient-storage',
]);

const REDIS_DOWN_MESSAGE =
  /^(Connection is closed\.?|Stream isn't writeable and enableOfflineQueue options is false|Reached the max retries per request limit)/;
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTCONN',
]);
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** The error and its causes (wrapped errors, AggregateError members), bounded against cycles. */
function* errorChain(error: unknown): Generator<Error> {
  const queue: unknown[] = [error];
  for (let seen = 0; queue.length > 0 && seen < 16; seen++) {
    const item = queue.shift();
    if (!(item instanceof Error)) continue;
    yield item;
    if (item.cause !== undefined) queue.push(item.cause);
    if (item instanceof AggregateError) queue.push(...item.errors);
  }
}

/**
 * Infrastructure faults are the service's state, not the request's fault nor a bug: Redis unreachable
 * (ioredis's MaxRetriesPerRequestError, a closed connection, a refused socket) is a 503 with
 * Retry-After; a full disk or quota on the data directory is a 507. `null` for anything else.
 */
export function infrastructureProblem(error: unknown): ApiProblem | null {
  for (const item of errorChain(error)) {
    const code = (item as NodeJS.ErrnoException).code;
    if (code !== undefined && DISK_FULL_CODES.has(code)) {
      return new ApiProblem(
        'insufficient-storage',
        'the data directory is full; nothing of this request was stored',
        { dependency: 'dataDir' },
      );
    }
    const isRedis =
      item.name === 'MaxRetriesPerRequestError' ||
      REDIS_DOWN_MESSAGE.test(item.message) ||
      (code !== undefined &&
        CONNECTION_CODES.has(code) &&
        (item as { syscall?: string }).syscall === 'connect');
    if (isRedis) {
      return new ApiProblem('dependency-unavailable', 'Redis is unreachable; retry later', {
        dependency: 'redis',
        retryAfter: REDIS_RETRY_AFTER_SECONDS,
      });
    }
  }
  return null;
}

export function internalProblem(): ApiProblem {
  return new ApiProblem('internal-error', 'The server failed to handle this request; it has been logged.');
}
