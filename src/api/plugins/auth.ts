// Authentication and authorisation: every request under /v1 carries `Authorization: Bearer <key>`, resolves
// to a principal {keyId, project, scopes} and must hold the route's scope. A route declares its scope in its
// config (`config: { scope: 'admin' }`); undeclared, reads (GET, HEAD) need `read` and everything else
// `write`. Routes outside /v1 (health, docs) are public unless they declare a scope. The request then works
// on its project's view of the store and the jobs (`request.store`, `request.jobs`), so a route cannot
// reach another project's ids: they read as missing (404, never 403).
import type { FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import type { AccessSettings } from '../../config.ts';
import type { JobService } from '../../queue/index.ts';
import {
  AccessStore,
  type ArtifactStore,
  DEFAULT_PROJECT,
  hashToken,
  type Principal,
  SCOPES,
  type Scope,
  hashesMatch,
} from '../../store/index.ts';
import { ApiProblem, PROBLEM_CONTENT_TYPE, problemBody, toProblem } from '../errors.ts';
import { problemResponses } from '../schemas.ts';

/** `public`: no key needed (health, docs). */
export type RouteScope = Scope | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a key needs for this route (see the file's header for the default). */
    scope?: RouteScope;
  }
  interface FastifyInstance {
    /** Projects and keys (authentication, `GET /v1/project`). */
    access: AccessStore;
  }
  interface FastifyRequest {
    /** Who is calling; with auth off, the default project with every scope. */
    principal: Principal;
    /** The store as the caller's project sees it. */
    store: ArtifactStore;
    /** The jobs as the caller's project sees them. */
    jobs: JobService;
  }
}

const ANONYMOUS: Principal = { keyId: 'anonymous', project: DEFAULT_PROJECT, scopes: [...SCOPES] };

/** The prefix under which routes need a key by default. */
const PROTECTED_PREFIX = '/v1/';

export interface AuthPluginOptions {
  settings: AccessSettings;
  prefix: string;
}

/** The OpenAPI security scheme every protected route names (with its scope as the required role). */
export const SECURITY_SCHEME = 'bearerAuth';

/** The scope a route needs, from its declaration or else its method and path (see the file's header). */
const ADMIN_PREFIX = '/admin';

/** The admin gate's check once keys are on: the caller's key holds the admin scope. */
export async function requireAdminScope(request: FastifyRequest): Promise<void> {
  if (!request.principal?.scopes.includes('admin')) {
    throw new ApiProblem('forbidden', 'this key lacks the "admin" scope this route needs', {
      scope: 'admin',
    });
  }
}

export function routeScope(method: string, url: string, declared: RouteScope | undefined): RouteScope {
  if (declared) return declared;
  // The operator surfaces (the queue dashboard) are an admin's, whatever the method.
  if (url === ADMIN_PREFIX || url.startsWith(`${ADMIN_PREFIX}/`)) return 'admin';
  if (!url.startsWith(PROTECTED_PREFIX)) return 'public';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
}

/** The scope a request needs, or `public`. */
export function requiredScope(request: FastifyRequest): RouteScope {
  return routeScope(
    request.method,
    request.routeOptions.url ?? request.url,
    request.routeOptions.config?.scope,
  );
}

function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1] : null;
}

function unauthorized(reply: FastifyReply, detail: string): never {
  // RFC 6750: the challenge names the scheme; no hint whether a key exists.
  reply.header('www-authenticate', 'Bearer realm="lorafuse"');
  throw new ApiProblem('unauthorized', detail);
}

export default fp<AuthPluginOptions>(
  async (app, { settings, prefix }) => {
    // Verified keys are remembered for settings.keyCacheMs (LORAFUSE_KEY_CACHE_S): one Redis read per key and
    // interval instead of one per request. Revoked through this API (DELETE /v1/keys/{id}): refused at once.
    const access = new AccessStore(app.redis, prefix, { keyCacheMs: settings.keyCacheMs });
    app.decorate('access', access);
    const bootstrapHash = settings.bootstrapKey ? hashToken(settings.bootstrapKey) : null;
    const bootstrap: Principal = { keyId: 'bootstrap', project: DEFAULT_PROJECT, scopes: [...SCOPES] };

    // The OpenAPI document states each route's requirement: the scheme with the scope as its role (OpenAPI
    // 3.1 allows roles for any scheme), plus the 401/403/429 it may answer; public routes say `security: []`.
    app.addHook('onRoute', (route) => {
      const method = Array.isArray(route.method) ? route.method[0] : route.method;
      const scope = routeScope(method, route.url, route.config?.scope);
      const schema = (route.schema ?? {}) as FastifySchema & {
        security?: Array<Record<string, string[]>>;
        response?: Record<string, unknown>;
      };
      if (scope === 'public') {
        schema.security = [];
      } else {
        schema.security = [{ [SECURITY_SCHEME]: [scope] }];
        schema.response = { ...problemResponses(401, 403, 429), ...schema.response };
      }
      route.schema = schema;
    });

    app.decorateRequest('principal', null as unknown as Principal);
    app.decorateRequest('store', null as unknown as ArtifactStore);
    app.decorateRequest('jobs', null as unknown as JobService);

    async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<Principal> {
      const token = bearerToken(request);
      if (token === null) {
        return unauthorized(
          reply,
          request.headers.authorization === undefined
            ? 'this route needs an API key: Authorization: Bearer <key>'
            : 'the Authorization header must be "Bearer <key>"',
        );
      }
      const tokenHash = hashToken(token);
      if (bootstrapHash && hashesMatch(tokenHash, bootstrapHash)) return bootstrap;
      const key = await access.authenticate(token, tokenHash);
      if (!key) return unauthorized(reply, 'the API key is not valid (unknown or revoked)');
      return { keyId: key.id, project: key.project, scopes: key.scopes };
    }

    app.addHook('onRequest', async (request, reply) => {
      const scope = requiredScope(request);
      let principal = ANONYMOUS;
      if (settings.authEnabled && scope !== 'public') {
        try {
          principal = await authenticate(request, reply);
          if (!principal.scopes.includes(scope)) {
            throw new ApiProblem('forbidden', `this key lacks the "${scope}" scope this route needs`, {
              scope,
            });
          }
        } catch (error) {
          // Answered here rather than thrown: plugins with error handlers of their own (bull-board's dashboard)
          // would turn a thrown refusal into a 500.
          const problem = toProblem(error);
          if (!problem) throw error;
          return reply
            .code(problem.status)
            .type(PROBLEM_CONTENT_TYPE)
            .send(problemBody(problem, request.url));
        }
      }
      request.principal = principal;
      request.store = app.store.forProject(principal.project);
      request.jobs = app.jobs.forProject(principal.project);
      // The key's id (never the key) goes into this request's log lines. request.log is already this request's
      // own child logger: adding the binding to it costs far less than a child of the child on every request.
      if (principal.keyId !== 'anonymous') {
        const log = request.log as typeof request.log & { setBindings?: (bindings: object) => void };
        if (log.setBindings) log.setBindings({ keyId: principal.keyId });
        else request.log = request.log.child({ keyId: principal.keyId });
      }
    });
  },
  {
    name: 'lorafuse-auth',
    fastify: '5.x',
    dependencies: ['lorafuse-redis', 'lorafuse-store', 'lorafuse-jobs'],
  },
);
