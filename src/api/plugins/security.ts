// The web-facing defences around the routes: security headers (helmet's, computed once), CORS for dashboards only
// when origins are configured (@fastify/cors; off by default, so a page on another origin cannot read or
// make requests with a browser's help), and a rate limit per key counted in Redis (@fastify/rate-limit), so
// every API process of a deployment shares one count. Request and idle timeouts are server options
// (serverOptions in app.ts): they act on the socket, before any route runs.
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import fp from 'fastify-plugin';
import type { AccessSettings } from '../../config.ts';
import { ApiProblem } from '../errors.ts';
import { requiredScope } from './auth.ts';
import { securityHeaders } from './security-headers.ts';

export interface SecurityPluginOptions {
  settings: AccessSettings;
  prefix: string;
}

/** Headers a dashboard on an allowed origin may send and read. */
const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'x-request-id', 'range'];
const CORS_EXPOSED_HEADERS = [
  'location',
  'x-request-id',
  'retry-after',
  'etag',
  'content-range',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
];

export default fp<SecurityPluginOptions>(
  async (app, { settings, prefix }) => {
    const headers = securityHeaders({
      // The API answers JSON and files; the only pages are /docs (swagger-ui sets its own CSP for its static
      // files, in its onSend hook, over this one) and report.html (inline styles and SVG, no script).
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: ["'self'", "'unsafe-inline'"],
          imgSrc: ["'self'", 'data:'],
          scriptSrc: ["'self'"],
          connectSrc: ["'self'"],
          fontSrc: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
        },
      },
      // Artifacts are downloaded by other origins' tools (not browsers); keep them fetchable.
      crossOriginResourcePolicy: { policy: 'same-site' },
    });
    // On every response, refusals included (set before any other hook can answer). Set on the raw response,
    // where @fastify/helmet sets them, so every path that answers (errors included) carries them as before.
    const entries = Object.entries(headers);
    app.addHook('onRequest', (_request, reply, done) => {
      for (const [name, value] of entries) reply.raw.setHeader(name, value);
      done();
    });

    if (settings.corsOrigins.length > 0) {
      await app.register(cors, {
        origin: settings.corsOrigins.includes('*') ? '*' : settings.corsOrigins,
        methods: ['GET', 'HEAD', 'POST', 'DELETE'],
        allowedHeaders: CORS_ALLOWED_HEADERS,
        exposedHeaders: CORS_EXPOSED_HEADERS,
        // Keys travel in the Authorization header, never in cookies: no credentialed CORS.
        credentials: false,
        maxAge: 600,
      });
    }

    if (settings.rateLimit > 0) {
      await app.register(rateLimit, {
        global: true,
        max: settings.rateLimit,
        timeWindow: settings.rateLimitWindowMs,
        redis: app.redis,
        nameSpace: `${prefix}:ratelimit:`,
        // After authentication (onRequest), before the body is read: counted per key, and per client address
        // for what needs no key.
        hook: 'preParsing',
        keyGenerator: (request) =>
          request.principal && request.principal.keyId !== 'anonymous'
            ? `key:${request.principal.keyId}`
            : `ip:${request.ip}`,
        // Liveness and readiness probes are never refused.
        allowList: (request) => requiredScope(request) === 'public' && !request.url.startsWith('/v1/'),
        // A Redis outage is answered by the route (503), not turned into a rate-limit error.
        skipOnError: true,
        errorResponseBuilder: (_request, context) =>
          new ApiProblem(
            'rate-limited',
            `rate limit of ${context.max} requests per ${context.after} reached`,
            {
              limit: context.max,
              retryAfter: Math.ceil(context.ttl / 1000),
            },
          ),
      });
    }
  },
  { name: 'lorafuse-security', fastify: '5.x', dependencies: ['lorafuse-redis'] },
);
