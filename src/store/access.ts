// Projects and API keys in Redis. A key is shown once, when it is made; Redis keeps only the sha256 of
// it (keys are 256 random bits, so a fast hash is as good as a slow one and a lookup is one HGET).
// Each project has a webhook secret, made with the project, that only admins read.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { KeyCache } from './key-cache.ts';

/** `read`: GETs. `write`: uploads, jobs, deletes. `admin`: keys, the project's secrets, operator views. */
export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Every artifact and job written without a project (and every key made by LORAFUSE_BOOTSTRAP_KEY) is here. */
export const DEFAULT_PROJECT = 'default';

const PROJECT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const KEY_PREFIX = 'lfk_';
/** lfk_<12 hex id>_<43 base64url secret>: the id names the key in listings and logs, the rest is secret. */
const TOKEN_PATTERN = /^lfk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

export class AccessError extends Error {
  constructor(
    readonly code: 'invalid-project' | 'invalid-scopes' | 'key-not-found' | 'project-not-found',
    message: string,
  ) {
    super(message);
    this.name = 'AccessError';
  }
}

export function isProjectName(name: string): boolean {
  return PROJECT_PATTERN.test(name);
}

export function assertProjectName(name: string): void {
  if (!isProjectName(name)) {
    throw new AccessError(
      'invalid-project',
      `project "${name}" must be 1-63 of a-z, 0-9, "_" and "-", starting with a letter or digit`,
    );
  }
}

/** Parses `read,write` (with `admin` implying the others is the caller's choice, not ours: scopes are listed). */
export function parseScopes(text: string): Scope[] {
  const scopes = [
    ...new Set(
      text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length > 0) {
    throw new AccessError('invalid-scopes', `scopes must be a list of ${SCOPES.join(', ')}; got "${text}"`);
  }
  return scopes as Scope[];
}

/** What a request authenticated as. */
export interface Principal {
  /** The key's public id (never the secret); `bootstrap` or `anonymous` for those two. */
  keyId: string;
  project: string;
  scopes: Scope[];
}

/** A key as listings show it: everything but the secret (which is not stored at all). */
export interface ApiKeyRecord {
  id: string;
  name: string;
  project: string;
  scopes: Scope[];
  createdAt: string;
}

export interface ProjectRecord {
  name: string;
  createdAt: string;
  /** HMAC key of the project's webhook signatures. */
  webhookSecret: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when two hashToken results are equal, compared in constant time. */
export function hashesMatch(tokenHash: string, expectedHash: string): boolean {
  return timingSafeEqual(Buffer.from(tokenHash, 'hex'), Buffer.from(expectedHash, 'hex'));
}

function accessKeys(prefix: string) {
  return {
    /** Hash: sha256(token) -> JSON ApiKeyRecord (one HGET authenticates a request). */
    byHash: `${prefix}:access:keys-by-hash`,
    /** Hash: key id -> sha256(token), for listing and revoking by id. */
    byId: `${prefix}:access:keys`,
    /** Hash: project name -> JSON ProjectRecord. */
    projects: `${prefix}:access:projects`,
  };
}

export interface AccessStoreOptions {
  /**
   * How long a verified key may be answered from this process's memory (ms; 0, the default: every lookup reads
   * Redis). A key revoked elsewhere keeps working here at most this long; revoked through this store, not at all.
   */
  keyCacheMs?: number;
  /** Milliseconds now, for the key cache (tests). */
  now?: () => number;
}

/** Projects and their keys, shared by the API (authentication), the CLI (`lorafuse keys`) and workers (webhook secrets). */
export class AccessStore {
  private readonly keys: ReturnType<typeof accessKeys>;
  private readonly cache: KeyCache<ApiKeyRecord> | null;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    options: AccessStoreOptions = {},
  ) {
    this.keys = accessKeys(prefix);
    const ttlMs = options.keyCacheMs ?? 0;
    this.cache = ttlMs > 0 ? new KeyCache<ApiKeyRecord>({ ttlMs, now: options.now }) : null;
  }

  /** The project, created with a fresh webhook secret when it does not exist yet. */
  async ensureProject(name: string): Promise<ProjectRecord> {
    assertProjectName(name);
    const fresh: ProjectRecord = {
      name,
      createdAt: new Date().toISOString(),
      webhookSecret: `whsec_${randomBytes(32).toString('base64url')}`,
    };
    await this.redis.hsetnx(this.keys.projects, name, JSON.stringify(fresh));
    return (await this.project(name)) ?? fresh;
  }

  async project(name: string): Promise<ProjectRecord | null> {
    const json = await this.redis.hget(this.keys.projects, name);
    return json === null ? null : (JSON.parse(json) as ProjectRecord);
  }

  /** Makes a key; the returned token is the only copy there will ever be. */
  async createKey(input: {
    project: string;
    scopes: Scope[];
    name?: string;
  }): Promise<{ token: string; key: ApiKeyRecord }> {
    await this.ensureProject(input.project);
    const id = randomBytes(6).toString('hex');
    const token = `${KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
    const key: ApiKeyRecord = {
      id,
      name: input.name ?? '',
      project: input.project,
      scopes: [...new Set(input.scopes)],
      createdAt: new Date().toISOString(),
    };
    const hash = hashToken(token);
    await this.redis
      .multi()
      .hset(this.keys.byHash, hash, JSON.stringify(key))
      .hset(this.keys.byId, id, hash)
      .exec();
    return { token, key };
  }

  /**
   * The key a bearer token is, or null (unknown, revoked, or not shaped like one of ours). `tokenHash` is
   * hashToken(token) when the caller has it already. Known keys may come from the key cache (keyCacheMs).
   */
  async authenticate(token: string, tokenHash = hashToken(token)): Promise<ApiKeyRecord | null> {
    if (!TOKEN_PATTERN.test(token)) return null;
    const cached = this.cache?.get(tokenHash);
    if (cached) return cached;
    const read = this.cache?.beginRead();
    const json = await this.redis.hget(this.keys.byHash, tokenHash);
    if (json === null) return null;
    const key = JSON.parse(json) as ApiKeyRecord;
    if (read) this.cache?.set(tokenHash, key, read);
    return key;
  }

  /** Keys of one project, or of all projects; oldest first. */
  async listKeys(project?: string): Promise<ApiKeyRecord[]> {
    const all = Object.values(await this.redis.hgetall(this.keys.byHash)).map(
      (json) => JSON.parse(json) as ApiKeyRecord,
    );
    return all
      .filter((key) => project === undefined || key.project === project)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Revokes at once: the next request with it is a 401. Throws AccessError when no such key exists. */
  async revokeKey(id: string, project?: string): Promise<ApiKeyRecord> {
    const hash = await this.redis.hget(this.keys.byId, id);
    const json = hash === null ? null : await this.redis.hget(this.keys.byHash, hash);
    const key = json === null ? null : (JSON.parse(json) as ApiKeyRecord);
    if (!key || !hash || (project !== undefined && key.project !== project)) {
      throw new AccessError('key-not-found', `no key with id ${id}`);
    }
    this.cache?.forget(hash);
    await this.redis.multi().hdel(this.keys.byHash, hash).hdel(this.keys.byId, id).exec();
    // Again after the delete: a lookup that read the key in between may have cached it.
    this.cache?.forget(hash);
    return key;
  }
}

/** The webhook secret of a project (made with the project on first use): what webhook deliveries sign with. */
export async function projectWebhookSecret(redis: Redis, prefix: string, project: string): Promise<string> {
  return (await new AccessStore(redis, prefix).ensureProject(project)).webhookSecret;
}

/**
 * Where webhook deliveries get their key once projects exist: each project's own secret (GET /v1/project), except
 * that LORAFUSE_WEBHOOK_SECRET, when set, stays the default project's (deployments that configured it keep it).
 */
export function projectWebhookSecrets(
  redis: Redis,
  prefix: string,
  defaultProjectSecret?: string,
): (project: string) => Promise<string> {
  return async (project) =>
    project === DEFAULT_PROJECT && defaultProjectSecret
      ? defaultProjectSecret
      : projectWebhookSecret(redis, prefix, project);
}
