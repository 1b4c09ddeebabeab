// A small client of a running lorafuse API over fetch: what the demo (and scripts) need.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { JobView } from '../queue/index.ts';
import type { ArtifactRecord } from '../store/index.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Record<string, unknown>,
  ) {
    super(`HTTP ${status}: ${String(problem.detail ?? problem.title ?? JSON.stringify(problem))}`);
    this.name = 'ApiError';
  }
}

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  private async json<T>(response: Response): Promise<T> {
    const text = await response.text();
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!response.ok) throw new ApiError(response.status, body);
    return body as T;
  }

  /** Uploads a model folder's files (one multipart part per file, named by its file name). */
  async uploadModel(dir: string, fileNames: string[]): Promise<ArtifactRecord> {
    const form = new FormData();
    for (const name of fileNames) {
      form.append(name, new Blob([await readFile(path.join(dir, name))]), name);
    }
    return this.json(await fetch(`${this.baseUrl}/v1/models`, { method: 'POST', body: form }));
  }

  async submitMerge(recipe: Record<string, unknown>, idempotencyKey?: string): Promise<JobView> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    return this.json(
      await fetch(`${this.baseUrl}/v1/merges`, { method: 'POST', headers, body: JSON.stringify(recipe) }),
    );
  }

  async job(id: string): Promise<JobView> {
    return this.json(await fetch(`${this.baseUrl}/v1/jobs/${id}`));
  }

  async model(id: string): Promise<ArtifactRecord> {
    return this.json(await fetch(`${this.baseUrl}/v1/models/${id}`));
  }

  async downloadModelFile(id: string, name: string): Promise<Buffer> {
    const response = await fetch(`${this.baseUrl}/v1/models/${id}/files/${encodeURIComponent(name)}`);
    if (!response.ok) await this.json(response);
    return Buffer.from(await response.arrayBuffer());
  }
}
