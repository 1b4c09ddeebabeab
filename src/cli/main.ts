// The `lorafuse` command: one entry point dispatching to a module per subcommand. Config errors
// exit 2 with the variable's name; model commands load lazily (they pull in tfjs).
import { ConfigError, loadConfig, loadMergeWorkers, loadRuntimeSettings } from '../config.ts';
import { VERSION } from '../version.ts';
import { nearest, prepareCommand } from './args.ts';
import { DEMO_MERGE_SPEC, DEV_SPEC, SERVE_SPEC, WORKER_SPEC } from './usage.ts';

const USAGE = `lorafuse ${VERSION}: fuse fine-tuned models and LoRA adapters into one multi-task model

usage: lorafuse <command> [options]     (lorafuse <command> --help for details)

service
  serve       the HTTP API (needs REDIS_URL)
  worker      the queue workers (needs REDIS_URL)
  dev         API + worker + a private redis-server when REDIS_URL is unset
  demo        fine-tune → merge → evaluate → report on real digits (the quick study)
  demo merge  the merge walkthrough: four small checkpoints through the queue
  study       the L-LoRA paper's comparison through the API: study [URL] [--quick | --preset ...]

local
  merge       run a mergekit-format recipe on local files: merge RECIPE --out PATH [--dry-run]
  predict     run a model (and adapter) on inputs
  finetune    fine-tune a model: LoRA, L-LoRA or full
  evaluate    accuracy and loss of a model (and adapter) on a dataset

remote (LORAFUSE_URL, LORAFUSE_API_KEY)
  client      upload, merge, wait, download, jobs, report against a running service

access (REDIS_URL)
  keys        create, list and revoke API keys (scopes read, write, admin; one project each)

  --version   print the version
`;

type Command = (argv: string[]) => Promise<number>;

async function modelCommand(name: 'predict' | 'finetune' | 'evaluate', argv: string[]): Promise<number> {
  let module: { runModelCommand: (n: typeof name, a: string[]) => Promise<number> };
  try {
    module = await import('./model-commands.ts');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes('model-commands')) {
      process.stderr.write(
        `lorafuse ${name} is not available in this build (src/cli/model-commands.ts missing)\n`,
      );
      return 1;
    }
    throw error;
  }
  return module.runModelCommand(name, argv);
}

const COMMANDS: Record<string, Command> = {
  serve: async (argv) => (await import('./serve-command.ts')).runServe(argv),
  worker: async (argv) => (await import('./worker-command.ts')).runWorker(argv),
  dev: async (argv) => (await import('./dev-command.ts')).runDev(argv),
  demo: async (argv) => {
    if (argv[0] !== 'merge') return (await import('./study/command.ts')).runStudyDemo(argv);
    const prepared = prepareCommand(DEMO_MERGE_SPEC, argv.slice(1));
    if (typeof prepared === 'number') return prepared;
    loadConfig();
    return (await import('./demo-command.ts')).runDemo(argv.slice(1));
  },
  merge: async (argv) => (await import('./merge-command.ts')).runMergeCommand(argv),
  predict: (argv) => modelCommand('predict', argv),
  finetune: (argv) => modelCommand('finetune', argv),
  evaluate: (argv) => modelCommand('evaluate', argv),
  client: async (argv) => (await import('./client/command.ts')).runClient(argv),
  study: async (argv) => (await import('./study/command.ts')).runStudy(argv),
  keys: async (argv) => (await import('./keys-command.ts')).runKeys(argv),
};

const SERVICE_SPECS = { serve: SERVE_SPEC, worker: WORKER_SPEC, dev: DEV_SPEC };

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    const guess = nearest(name, Object.keys(COMMANDS));
    process.stderr.write(
      `lorafuse: unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ''}\n\n${USAGE}`,
    );
    return 2;
  }
  try {
    // Fail on a bad variable before loading the (heavier) service modules.
    if (name in SERVICE_SPECS) {
      const prepared = prepareCommand(SERVICE_SPECS[name as keyof typeof SERVICE_SPECS], rest);
      if (typeof prepared === 'number') return prepared;
      const config = loadConfig();
      // Said before the service modules (Fastify, BullMQ, the workers) are loaded: that takes seconds.
      if ((name === 'serve' || name === 'worker') && !config.redisUrl) {
        process.stderr.write(
          `lorafuse ${name} needs REDIS_URL (or run \`lorafuse dev\` for an embedded Redis)\n`,
        );
        return 2;
      }
    }
    // The settings these commands read are checked before their arguments and files, as serve's are.
    if (name === 'merge') loadMergeWorkers();
    if (name === 'predict' || name === 'finetune' || name === 'evaluate') loadRuntimeSettings();
    return await command(rest);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`lorafuse: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`lorafuse: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
