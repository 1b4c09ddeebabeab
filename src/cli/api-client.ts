// What the demo asks of a running lorafuse API, on top of the package's typed client (src/client/):
// folder uploads from disk and whole-file downloads.
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import { type Artifact, type Job, LorafuseClient } from '../client/index.ts';

export class ApiClient {
  readonly api: LorafuseClient;

  /** `apiKey`: the key to send; LORAFUSE_API_KEY when not given. */
  constructor(
    readonly baseUrl: string,
    apiKey: string | undefined = process.env.LORAFUSE_API_KEY,
  ) {
    this.api = new LorafuseClient({ baseUrl, apiKey });
  }

  /** Uploads a model folder's files (one multipart part per file, named by its file name). */
  async uploadModel(dir: string, fileNames: string[]): Promise<Artifact> {
    const files = await Promise.all(
      fileNames.map(async (name) => ({ name, data: await openAsBlob(path.join(dir, name)) })),
    );
    return this.api.uploadArtifact('model', files);
  }

  submitMerge(recipe: Record<string, unknown>, idempotencyKey?: string): Promise<Job> {
    return this.api.submitMerge(recipe as Parameters<LorafuseClient['submitMerge']>[0], { idempotencyKey });
  }

  job(id: string): Promise<Job> {
    return this.api.getJob(id);
  }

  model(id: string): Promise<Artifact> {
    return this.api.getArtifact('model', id);
  }

  async downloadModelFile(id: string, name: string): Promise<Buffer> {
    const response = await this.api.downloadFile('model', id, name);
    return Buffer.from(await response.arrayBuffer());
  }
}
