// A typed client of the lorafuse API over fetch, for dashboards, scripts and `lorafuse client`. It uses
// only web-standard APIs (fetch, FormData, Blob), so it runs in Node ≥ 20, Deno, Bun and browsers.
// Every method names its operation in OPERATIONS, which a test checks against openapi.yaml.
import type {
  AnalysisRequest,
  Artifact,
  ArtifactKind,
  ArtifactPage,
  EvaluationRequest,
  FinetuneRequest,
  Health,
  Job,
  JobPage,
  JobState,
  JobType,
  MergeRecipe,
  MethodList,
  Problem,
  Readiness,
} from './types.ts';

/** The collection path segment of each artifact kind. */
export const COLLECTIONS: Record<ArtifactKind, string> = {
  model: 'models',
  adapter: 'adapters',
  dataset: 'datasets',
  head: 'heads',
};

export interface Operation {
  method: 'GET' | 'POST' | 'DELETE';
  /** OpenAPI path; `{collection}` stands for models, adapters and datasets alike. */
  path: string;
  /** The type (in types.ts) of the 2xx JSON body; absent for binary or empty answers. */
  response?: string;
  /** The type (in types.ts) of the JSON request body. */
  request?: string;
}

/** Each client method's HTTP operation: the single place paths are written. */
export const OPERATIONS = {
  health: { method: 'GET', path: '/healthz', response: 'Health' },
  readiness: { method: 'GET', path: '/readyz', response: 'Readiness' },
  methods: { method: 'GET', path: '/v1/methods', response: 'MethodList' },
  listArtifacts: { method: 'GET', path: '/v1/{collection}', response: 'ArtifactPage' },
  getArtifact: { method: 'GET', path: '/v1/{collection}/{id}', response: 'Artifact' },
  uploadArtifact: { method: 'POST', path: '/v1/{collection}', response: 'Artifact' },
  deleteArtifact: { method: 'DELETE', path: '/v1/{collection}/{id}' },
  downloadFile: { method: 'GET', path: '/v1/{collection}/{id}/files/{name}' },
  submitMerge: { method: 'POST', path: '/v1/merges', response: 'Job', request: 'MergeRecipe' },
  submitFinetune: { method: 'POST', path: '/v1/finetunes', response: 'Job', request: 'FinetuneRequest' },
  submitEvaluation: {
    method: 'POST',
    path: '/v1/evaluations',
    response: 'Job',
    request: 'EvaluationRequest',
  },
  submitAnalysis: { method: 'POST', path: '/v1/analyses', response: 'Job', request: 'AnalysisRequest' },
  listJobs: { method: 'GET', path: '/v1/jobs', response: 'JobPage' },
  getJob: { method: 'GET', path: '/v1/jobs/{id}', response: 'Job' },
  cancelJob: { method: 'DELETE', path: '/v1/jobs/{id}', response: 'Job' },
  jobReport: { method: 'GET', path: '/v1/jobs/{id}/report' },
} as const satisfies Record<string, Operation>;

/** An answer outside 2xx: the problem document the service sent (or one made from the status). */
export class LorafuseApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  constructor(status: number, problem: Problem, operation: string) {
    super(`${operation}: HTTP ${status} ${problem.title}${problem.detail ? `: ${problem.detail}` : ''}`);
    this.name = 'LorafuseApiError';
    this.status = status;
    this.problem = problem;
  }
}

/** The service could not be reached at all (refused, DNS, TLS, reset). */
export class LorafuseConnectionError extends Error {
  constructor(url: string, cause: unknown) {
    const reason = (cause as { cause?: { code?: string; message?: string } })?.cause;
    super(`cannot reach ${url}: ${reason?.code ?? reason?.message ?? (cause as Error)?.message ?? cause}`);
    this.name = 'LorafuseConnectionError';
  }
}

export class JobWaitTimeoutError extends Error {
  readonly job: Job;
  constructor(job: Job, timeoutMs: number) {
    super(`job ${job.id} still ${job.state} after ${timeoutMs / 1000}s`);
    this.name = 'JobWaitTimeoutError';
    this.job = job;
  }
}

export interface ClientOptions {
  /** e.g. https://lorafuse.example.com (no trailing /v1). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** A fetch to use instead of the global one (tests, proxies, retries). */
  fetch?: typeof fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

export interface UploadFile {
  /** The file name inside the artifact (config.json, model.safetensors, ...): also the multipart field name. */
  name: string;
  data: Blob;
}

export interface WaitOptions {
  /** Give up (JobWaitTimeoutError) after this long; default: wait forever. */
  timeoutMs?: number;
  /** First poll interval; doubles up to maxIntervalMs while nothing changes. Default 250. */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Called with every job view that differs from the previous one. */
  onUpdate?: (job: Job) => void;
  signal?: AbortSignal;
}

export const TERMINAL_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

function fill(path: string, values: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, key: string) => encodeURIComponent(values[key] ?? ''));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason ?? new Error('aborted'));
      },
      { once: true },
    );
  });
}

export class LorafuseClient {
  readonly baseUrl: string;
  private readonly apiKey?: string;
  private readonly fetchImpl: typeof fetch;
  private readonly extraHeaders: Record<string, string>;

  constructor(options: ClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) {
      throw new Error(`baseUrl must start with http:// or https://, got "${options.baseUrl}"`);
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiKey = options.apiKey || undefined;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.extraHeaders = options.headers ?? {};
  }

  /** Sends one operation; returns the raw response when it is 2xx or 304, else throws LorafuseApiError. */
  async request(
    name: keyof typeof OPERATIONS,
    params: Record<string, string> = {},
    init: {
      query?: Record<string, string | number | undefined>;
      body?: RequestInit['body'];
      headers?: Record<string, string>;
    } = {},
  ): Promise<Response> {
    const operation: Operation = OPERATIONS[name];
    const url = new URL(this.baseUrl + fill(operation.path, params));
    for (const [key, value] of Object.entries(init.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...this.extraHeaders,
      ...init.headers,
    };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method: operation.method, headers, body: init.body });
    } catch (error) {
      throw new LorafuseConnectionError(this.baseUrl, error);
    }
    if (response.ok || response.status === 304) return response;
    const text = await response.text();
    let problem: Problem;
    try {
      problem = JSON.parse(text) as Problem;
      if (typeof problem?.title !== 'string') throw new Error('not a problem document');
    } catch {
      problem = {
        type: 'about:blank',
        title: response.statusText || 'error',
        status: response.status,
        detail: text.slice(0, 500) || undefined,
      };
    }
    throw new LorafuseApiError(response.status, problem, `${operation.method} ${url.pathname}`);
  }

  private async json<T>(
    name: keyof typeof OPERATIONS,
    params?: Record<string, string>,
    init?: Parameters<LorafuseClient['request']>[2],
  ): Promise<T> {
    return (await (await this.request(name, params, init)).json()) as T;
  }

  private jsonBody(body: unknown, extra: Record<string, string> = {}) {
    return { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...extra } };
  }

  health(): Promise<Health> {
    return this.json('health');
  }

  readiness(): Promise<Readiness> {
    return this.json('readiness');
  }

  methods(): Promise<MethodList> {
    return this.json('methods');
  }

  listArtifacts(kind: ArtifactKind, page: { limit?: number; cursor?: string } = {}): Promise<ArtifactPage> {
    return this.json('listArtifacts', { collection: COLLECTIONS[kind] }, { query: page });
  }

  /** The artifact of `kind` with this content digest (Artifact.digest), or null: ask before uploading. */
  async findArtifactByDigest(kind: ArtifactKind, digest: string): Promise<Artifact | null> {
    const page = await this.json<ArtifactPage>(
      'listArtifacts',
      { collection: COLLECTIONS[kind] },
      { query: { digest } },
    );
    return page.items[0] ?? null;
  }

  getArtifact(kind: ArtifactKind, id: string): Promise<Artifact> {
    return this.json('getArtifact', { collection: COLLECTIONS[kind], id });
  }

  /** One multipart part per file; the part's field name and file name are both the file's name in the artifact. */
  uploadArtifact(kind: ArtifactKind, files: UploadFile[]): Promise<Artifact> {
    const form = new FormData();
    for (const file of files) form.append(file.name, file.data, file.name);
    return this.json('uploadArtifact', { collection: COLLECTIONS[kind] }, { body: form });
  }

  async deleteArtifact(kind: ArtifactKind, id: string): Promise<void> {
    await this.request('deleteArtifact', { collection: COLLECTIONS[kind], id });
  }

  /** The file's bytes as a stream (Response.body), with Content-Length and ETag (its sha256). */
  downloadFile(kind: ArtifactKind, id: string, name: string): Promise<Response> {
    return this.request(
      'downloadFile',
      { collection: COLLECTIONS[kind], id, name },
      { headers: { accept: '*/*' } },
    );
  }

  /** Queues a merge. A string body is sent as application/yaml (a mergekit recipe file with ids). */
  submitMerge(recipe: MergeRecipe | string, options: { idempotencyKey?: string } = {}): Promise<Job> {
    const idempotency: Record<string, string> = options.idempotencyKey
      ? { 'idempotency-key': options.idempotencyKey }
      : {};
    const init =
      typeof recipe === 'string'
        ? { body: recipe, headers: { 'content-type': 'application/yaml', ...idempotency } }
        : this.jsonBody(recipe, idempotency);
    return this.json('submitMerge', {}, init);
  }

  submitFinetune(request: FinetuneRequest, options: { idempotencyKey?: string } = {}): Promise<Job> {
    return this.json(
      'submitFinetune',
      {},
      this.jsonBody(request, options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {}),
    );
  }

  submitEvaluation(request: EvaluationRequest, options: { idempotencyKey?: string } = {}): Promise<Job> {
    return this.json(
      'submitEvaluation',
      {},
      this.jsonBody(request, options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {}),
    );
  }

  /** Queues a task-vector analysis; its result names a `report` artifact (GET /v1/jobs/{id}/report). */
  submitAnalysis(request: AnalysisRequest, options: { idempotencyKey?: string } = {}): Promise<Job> {
    return this.json(
      'submitAnalysis',
      {},
      this.jsonBody(request, options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {}),
    );
  }

  listJobs(
    query: { state?: JobState; type?: JobType; limit?: number; cursor?: string } = {},
  ): Promise<JobPage> {
    return this.json('listJobs', {}, { query });
  }

  getJob(id: string): Promise<Job> {
    return this.json('getJob', { id });
  }

  cancelJob(id: string): Promise<Job> {
    return this.json('cancelJob', { id });
  }

  /** A job's report (report.json: accuracies, normalized accuracies, analyses) as the service returns it. */
  jobReport(id: string): Promise<Record<string, unknown>> {
    return this.json('jobReport', { id });
  }

  /** Polls the job until it is completed, failed or cancelled; resolves with the last view either way. */
  async waitForJob(id: string, options: WaitOptions = {}): Promise<Job> {
    const started = Date.now();
    const maxInterval = options.maxIntervalMs ?? 2000;
    let interval = options.intervalMs ?? 250;
    let previous = '';
    for (;;) {
      const job = await this.getJob(id);
      const seen = JSON.stringify([job.state, job.progress, job.attempts, job.error]);
      if (seen !== previous) {
        previous = seen;
        interval = options.intervalMs ?? 250;
        options.onUpdate?.(job);
      } else {
        interval = Math.min(maxInterval, interval * 2);
      }
      if (TERMINAL_STATES.includes(job.state)) return job;
      if (options.timeoutMs !== undefined && Date.now() - started >= options.timeoutMs) {
        throw new JobWaitTimeoutError(job, options.timeoutMs);
      }
      const left = options.timeoutMs === undefined ? interval : options.timeoutMs - (Date.now() - started);
      await sleep(Math.max(0, Math.min(interval, left)), options.signal);
    }
  }
}
