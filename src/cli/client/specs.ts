// The declarations of `lorafuse client <subcommand>`: options, meanings, defaults and file checks.
import type { CommandSpec } from '../args.ts';

const ENVIRONMENT = `environment:
  LORAFUSE_URL       the service, e.g. https://lorafuse.example.com (required)
  LORAFUSE_API_KEY   sent as "Authorization: Bearer <key>" when set (--api-key KEY overrides it; the
                     environment keeps the key out of shell history and process listings)
Results go to stdout as JSON; progress and messages to stderr.`;

const TIMEOUT = {
  type: 'string',
  value: 'SECONDS',
  number: { min: 0 },
  description: 'give up waiting after this long (exit 124); the job keeps running',
  default: 'no limit',
} as const;

export const CLIENT_SPECS = {
  upload: {
    command: 'client upload',
    summary:
      'Uploads a model folder (config.json + safetensors), a PEFT adapter folder or a dataset file, unless the\nservice already holds the same content (looked up by its digest first).',
    positionals: [
      { name: 'KIND', description: 'what PATH is', choices: ['model', 'adapter', 'dataset'] },
      { name: 'PATH', description: 'the folder (model, adapter) or .safetensors file (model, dataset)' },
    ],
    options: {},
    notes: ENVIRONMENT,
  },
  merge: {
    command: 'client merge',
    summary:
      'Queues a mergekit recipe whose models are local folders or files (paths relative to the recipe) or artifact ids:\neach local input is uploaded first unless the service already holds it, then the recipe goes with the ids.',
    positionals: [{ name: 'RECIPE', path: 'file', description: 'a mergekit-format YAML (or JSON) recipe' }],
    options: {
      wait: {
        type: 'boolean',
        description: 'wait for the job to end (exit 0 only when it completes)',
        default: 'off',
      },
      download: {
        type: 'string',
        value: 'DIR',
        path: 'new-path',
        description: 'with --wait: download the merged artifact into DIR',
        default: 'no download',
      },
      report: {
        type: 'string',
        value: 'FILE',
        path: 'new-file',
        description: "with --wait: write the job's report (JSON) to FILE when the service has one",
        default: 'no report',
      },
      timeout: TIMEOUT,
      'idempotency-key': {
        type: 'string',
        value: 'KEY',
        description: 'the same key and recipe return the same job (safe retries in CI)',
        default: 'none',
      },
    },
    notes: ENVIRONMENT,
  },
  wait: {
    command: 'client wait',
    summary:
      'Waits for a job to end: a progress bar on a terminal, one line per change otherwise (CI).\nExit 0 when it completes, 1 when it fails or is cancelled (the error is printed), 124 on --timeout.',
    positionals: [{ name: 'JOB', description: 'the job id (job_...)' }],
    options: { timeout: TIMEOUT },
    notes: ENVIRONMENT,
  },
  download: {
    command: 'client download',
    summary:
      "Downloads every file of an artifact into DIR, checking each file's size and sha256 against its record.",
    positionals: [
      { name: 'ARTIFACT', description: 'the artifact id (mdl_..., adp_..., dst_...)' },
      { name: 'DIR', path: 'new-path', description: 'the folder to write (created when missing)' },
    ],
    options: {},
    notes: ENVIRONMENT,
  },
  jobs: {
    command: 'client jobs',
    summary: 'Lists jobs, newest first: a table on a terminal, JSON otherwise.',
    options: {
      state: {
        type: 'string',
        value: 'STATE',
        choices: ['queued', 'active', 'completed', 'failed', 'cancelled'],
        description: 'only jobs in this state',
        default: 'all',
      },
      type: {
        type: 'string',
        value: 'TYPE',
        choices: ['merge', 'finetune', 'evaluate'],
        description: 'only jobs of this type',
        default: 'all',
      },
      limit: {
        type: 'string',
        value: 'N',
        number: { integer: true, min: 1, max: 100 },
        description: 'how many jobs',
        default: '20',
      },
      json: { type: 'boolean', description: 'print JSON even on a terminal', default: 'off' },
    },
    notes: ENVIRONMENT,
  },
  report: {
    command: 'client report',
    summary: "Prints a job's report (GET /v1/jobs/{id}/report) as JSON.",
    positionals: [{ name: 'JOB', description: 'the job id (job_...)' }],
    options: {
      out: {
        type: 'string',
        value: 'FILE',
        description: 'write the report to FILE instead of stdout',
        default: 'stdout',
      },
    },
    notes: ENVIRONMENT,
  },
} satisfies Record<string, CommandSpec>;

export type ClientSubcommand = keyof typeof CLIENT_SPECS;

export const CLIENT_USAGE = `usage: lorafuse client <subcommand> [options]   (lorafuse client <subcommand> --help for details)

Drives a running lorafuse service from a shell or a CI pipeline.

  upload model|adapter|dataset PATH    upload a local artifact (skipped when the service has its content)
  merge RECIPE [--wait] [--download DIR] [--report FILE] [--timeout S]
                                       upload a recipe's local inputs, queue the merge (and wait, download)
  wait JOB [--timeout S]               wait for a job: exit 0 on success, 1 on failure, 124 on timeout
  download ARTIFACT DIR                download an artifact's files (checked against their sha256)
  jobs [--state S] [--type T]          list jobs
  report JOB [--out FILE]              a job's report as JSON

${ENVIRONMENT}
`;
