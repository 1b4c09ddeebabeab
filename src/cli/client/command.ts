// `lorafuse client <subcommand>`: drives a remote service (LORAFUSE_URL, LORAFUSE_API_KEY) through the
// typed client. Results go to stdout as JSON, progress and messages to stderr, so pipelines can parse.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse as parseYaml } from 'yaml';
import {
  type Artifact,
  type ArtifactKind,
  type Job,
  JobWaitTimeoutError,
  LorafuseApiError,
  LorafuseClient,
  LorafuseConnectionError,
  type MergeRecipe,
} from '../../client/index.ts';
import { kindOfId } from '../../store/index.ts';
import { type CommandOutput, nearest, type ParsedCommand, prepareCommand, processOutput } from '../args.ts';
import { progressView } from './job-progress.ts';
import { ClientInputError, ensureUploaded, readLocalArtifact } from './local-artifact.ts';
import { CLIENT_SPECS, CLIENT_USAGE, type ClientSubcommand } from './specs.ts';

/** Exit code when --timeout ends a wait (as timeout(1)). */
export const EXIT_TIMEOUT = 124;

interface Context {
  client: LorafuseClient;
  io: CommandOutput & { stderrStream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number } };
  parsed: ParsedCommand;
}

function printJson(ctx: Context, value: unknown): void {
  ctx.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

function timeoutMs(parsed: ParsedCommand): number | undefined {
  const value = parsed.values.timeout;
  return typeof value === 'string' ? Number(value) * 1000 : undefined;
}

function artifactSummary(artifact: Artifact, extra: Record<string, unknown> = {}) {
  return { id: artifact.id, kind: artifact.kind, digest: artifact.digest ?? null, ...extra };
}

async function upload(ctx: Context): Promise<number> {
  const [kind, target] = ctx.parsed.positionals as [ArtifactKind, string];
  const local = await readLocalArtifact(kind, target);
  const { artifact, uploaded } = await ensureUploaded(ctx.client, local);
  ctx.io.stderr(
    uploaded
      ? `uploaded ${local.path} as ${artifact.id} (${local.files.map((f) => f.name).join(', ')})\n`
      : `${local.path}: the service already holds this content as ${artifact.id}; nothing uploaded\n`,
  );
  printJson(ctx, artifactSummary(artifact, { uploaded }));
  return 0;
}

/** Follows a job to its end; prints the final view and returns the exit code. */
async function follow(ctx: Context, jobId: string): Promise<{ code: number; job: Job | null }> {
  const view = progressView(ctx.io.stderrStream);
  let job: Job;
  try {
    job = await ctx.client.waitForJob(jobId, {
      timeoutMs: timeoutMs(ctx.parsed),
      onUpdate: (j) => view.update(j),
    });
  } catch (error) {
    view.finish();
    if (error instanceof JobWaitTimeoutError) {
      ctx.io.stderr(
        `timed out: ${error.message} (it keeps running; \`lorafuse client wait ${jobId}\` resumes)\n`,
      );
      printJson(ctx, error.job);
      return { code: EXIT_TIMEOUT, job: null };
    }
    throw error;
  }
  view.finish();
  printJson(ctx, job);
  if (job.state === 'completed') return { code: 0, job };
  const why = job.error ? `${job.error.type}: ${job.error.message}` : 'no error recorded';
  ctx.io.stderr(`job ${job.id} ${job.state}: ${why}\n`);
  return { code: 1, job };
}

async function wait(ctx: Context): Promise<number> {
  return (await follow(ctx, ctx.parsed.positionals[0])).code;
}

const SHA256_ETAG = /^"?([0-9a-f]{64})"?$/;

/** Streams each file to DIR/name.part while hashing, checks size and sha256, then renames it. */
async function downloadArtifact(
  ctx: Context,
  id: string,
  dir: string,
): Promise<{ dir: string; files: string[] }> {
  const kind = kindOfId(id);
  if (!kind) throw new ClientInputError(`"${id}" is not an artifact id (mdl_..., adp_..., dst_..., hed_...)`);
  if (kind === 'report') throw new ClientInputError(`${id} is a report: lorafuse client report JOB reads it`);
  const artifact = await ctx.client.getArtifact(kind, id);
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const file of artifact.files) {
    const target = path.join(dir, file.name);
    const partial = `${target}.part`;
    const response = await ctx.client.downloadFile(kind, id, file.name);
    const etag = SHA256_ETAG.exec(response.headers.get('etag') ?? '')?.[1];
    if (etag && etag !== file.sha256)
      throw new Error(`${file.name}: the service sent ETag ${etag}, its record says ${file.sha256}`);
    const hash = createHash('sha256');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(
        Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
        count,
        createWriteStream(partial),
      );
      const digest = hash.digest('hex');
      if (size !== file.size || digest !== file.sha256) {
        throw new Error(
          `${file.name}: received ${size} bytes with sha256 ${digest}; expected ${file.size} bytes, ${file.sha256}`,
        );
      }
      renameSync(partial, target);
    } catch (error) {
      rmSync(partial, { force: true });
      throw error;
    }
    written.push(file.name);
    ctx.io.stderr(`downloaded ${file.name} (${file.size} bytes, sha256 checked)\n`);
  }
  return { dir: path.resolve(dir), files: written };
}

async function download(ctx: Context): Promise<number> {
  const [id, dir] = ctx.parsed.positionals;
  printJson(ctx, { artifact: id, ...(await downloadArtifact(ctx, id, dir)) });
  return 0;
}

async function writeReport(
  ctx: Context,
  jobId: string,
  file: string | undefined,
  missingIsError: boolean,
): Promise<number> {
  let report: Record<string, unknown>;
  try {
    report = await ctx.client.jobReport(jobId);
  } catch (error) {
    if (error instanceof LorafuseApiError && error.status === 404) {
      const why = String(error.problem.detail ?? error.problem.title);
      ctx.io.stderr(`no report for job ${jobId} (${why})\n`);
      return missingIsError ? 1 : 0;
    }
    throw error;
  }
  if (file) {
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    ctx.io.stderr(`wrote the report of ${jobId} to ${file}\n`);
  } else {
    printJson(ctx, report);
  }
  return 0;
}

async function report(ctx: Context): Promise<number> {
  const out = ctx.parsed.values.out;
  return writeReport(ctx, ctx.parsed.positionals[0], typeof out === 'string' ? out : undefined, true);
}

async function jobs(ctx: Context): Promise<number> {
  const { state, type, limit, json } = ctx.parsed.values;
  const page = await ctx.client.listJobs({
    state: state as Job['state'] | undefined,
    type: type as Job['type'] | undefined,
    limit: typeof limit === 'string' ? Number(limit) : undefined,
  });
  if (json || !(process.stdout.isTTY === true)) {
    printJson(ctx, page);
    return 0;
  }
  const rows = page.items.map((job) => [job.id, job.type, job.state, job.createdAt, job.error?.type ?? '']);
  const header = ['job', 'type', 'state', 'created', 'error'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows])
    ctx.io.stdout(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd()}\n`,
    );
  return 0;
}

/** The recipe's references that name local files, uploaded (or found) and replaced by artifact ids. */
async function uploadRecipeInputs(
  ctx: Context,
  recipe: Record<string, unknown>,
  recipeDir: string,
): Promise<void> {
  const done = new Map<string, string>();
  const resolve = async (ref: unknown, kind: ArtifactKind, where: string): Promise<string> => {
    if (typeof ref !== 'string' || ref === '')
      throw new ClientInputError(`${where} must name a file, a folder or an artifact id`);
    const local = path.resolve(recipeDir, ref);
    const key = `${kind}:${local}`;
    if (done.has(key)) return done.get(key)!;
    let id: string;
    try {
      const artifact = await readLocalArtifact(kind, local);
      const outcome = await ensureUploaded(ctx.client, artifact);
      id = outcome.artifact.id;
      ctx.io.stderr(outcome.uploaded ? `uploaded ${ref} -> ${id}\n` : `${ref}: already stored as ${id}\n`);
    } catch (error) {
      // A reference that is no local path may be an artifact id the service already has.
      if (error instanceof ClientInputError && kindOfId(ref) === kind) id = ref;
      else if (error instanceof ClientInputError)
        throw new ClientInputError(`${where} (${ref}): ${error.message}`);
      else throw error;
    }
    done.set(key, id);
    return id;
  };
  if (recipe.base_model !== undefined)
    recipe.base_model = await resolve(recipe.base_model, 'model', 'base_model');
  if (!Array.isArray(recipe.models)) throw new ClientInputError('the recipe has no models list');
  for (const [i, entry] of (recipe.models as Array<Record<string, unknown>>).entries()) {
    if (entry.model !== undefined) entry.model = await resolve(entry.model, 'model', `models[${i}].model`);
    if (entry.adapter !== undefined)
      entry.adapter = await resolve(entry.adapter, 'adapter', `models[${i}].adapter`);
  }
}

async function merge(ctx: Context): Promise<number> {
  const [recipePath] = ctx.parsed.positionals;
  const { wait: shouldWait, download: downloadDir, report: reportFile } = ctx.parsed.values;
  if ((downloadDir || reportFile) && !shouldWait)
    throw new ClientInputError('--download and --report need --wait');
  let recipe: unknown;
  try {
    recipe = parseYaml(await readFile(recipePath, 'utf8'), { uniqueKeys: true });
  } catch (error) {
    throw new ClientInputError(
      `${recipePath} does not parse as YAML: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  if (!recipe || typeof recipe !== 'object' || Array.isArray(recipe))
    throw new ClientInputError(`${recipePath} is not a recipe (a mapping)`);
  await uploadRecipeInputs(ctx, recipe as Record<string, unknown>, path.dirname(path.resolve(recipePath)));
  const key = ctx.parsed.values['idempotency-key'];
  const job = await ctx.client.submitMerge(recipe as MergeRecipe, {
    idempotencyKey: typeof key === 'string' ? key : undefined,
  });
  ctx.io.stderr(`queued merge ${job.id}\n`);
  if (!shouldWait) {
    printJson(ctx, job);
    return 0;
  }
  const { code, job: finished } = await follow(ctx, job.id);
  if (code !== 0 || !finished) return code;
  if (typeof reportFile === 'string') await writeReport(ctx, finished.id, reportFile, false);
  if (typeof downloadDir === 'string') {
    const artifact = (finished.result as { artifact?: { id?: string } } | null)?.artifact?.id;
    if (!artifact) throw new Error(`job ${finished.id} completed without a result artifact`);
    await downloadArtifact(ctx, artifact, downloadDir);
  }
  return 0;
}

const ACTIONS: Record<ClientSubcommand, (ctx: Context) => Promise<number>> = {
  upload,
  merge,
  wait,
  download,
  jobs,
  report,
};

/**
 * `--api-key KEY` (or `--api-key=KEY`) anywhere after the subcommand: every subcommand takes it, over
 * LORAFUSE_API_KEY. Taken out before the subcommand's own options are parsed.
 */
export function takeApiKey(argv: string[]): { argv: string[]; apiKey?: string } | { error: string } {
  const rest: string[] = [];
  let apiKey: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--api-key') {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) return { error: '--api-key needs a value' };
      apiKey = value;
      i++;
    } else if (arg.startsWith('--api-key=')) {
      apiKey = arg.slice('--api-key='.length);
    } else {
      rest.push(arg);
    }
  }
  return { argv: rest, apiKey };
}

export async function runClient(argv: string[], io: CommandOutput = processOutput): Promise<number> {
  const [name, ...given] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    io.stdout(CLIENT_USAGE);
    return name === undefined ? 2 : 0;
  }
  if (!(name in CLIENT_SPECS)) {
    const guess = nearest(name, Object.keys(CLIENT_SPECS));
    io.stderr(
      `lorafuse client: unknown subcommand "${name}"${guess ? `; did you mean "${guess}"?` : ''}\n\n${CLIENT_USAGE}`,
    );
    return 2;
  }
  const subcommand = name as ClientSubcommand;
  const taken = takeApiKey(given);
  if ('error' in taken) {
    io.stderr(`lorafuse client ${subcommand}: ${taken.error}\n`);
    return 2;
  }
  const parsed = prepareCommand(CLIENT_SPECS[subcommand], taken.argv, io);
  if (typeof parsed === 'number') return parsed;
  const baseUrl = process.env.LORAFUSE_URL;
  if (!baseUrl || !/^https?:\/\//.test(baseUrl)) {
    io.stderr(
      `lorafuse client: LORAFUSE_URL must name the service (http:// or https://), got ${baseUrl ? `"${baseUrl}"` : 'nothing'}\n`,
    );
    return 2;
  }
  const client = new LorafuseClient({ baseUrl, apiKey: taken.apiKey ?? process.env.LORAFUSE_API_KEY });
  const ctx: Context = { client, parsed, io: { ...io, stderrStream: process.stderr } };
  try {
    return await ACTIONS[subcommand](ctx);
  } catch (error) {
    if (
      error instanceof ClientInputError ||
      error instanceof LorafuseApiError ||
      error instanceof LorafuseConnectionError
    ) {
      io.stderr(`lorafuse client ${subcommand}: ${error.message}\n`);
      const errors = error instanceof LorafuseApiError ? error.problem.errors : undefined;
      if (Array.isArray(errors)) for (const e of errors) io.stderr(`  ${JSON.stringify(e)}\n`);
      return 1;
    }
    throw error;
  }
}
