// The import layers of DESIGN.md as rules `npm run check:imports` (run by .ci/run) enforces.
// src/config.ts (settings and ConfigError) sits outside the layers: any layer may take what it is handed from it.
const FRAMEWORKS = '(^|/)node_modules/(fastify|@fastify/[^/]+|fastify-plugin|bullmq|pino|pino-[^/]+|@tensorflow/[^/]+)/';

/** A layer that may import only the given folders of src (plus itself and src/config.ts). */
function layer(name, allowed, comment) {
  const ok = [name, ...allowed].join('|');
  return {
    name: `${name}-imports-only-${allowed.length ? allowed.join('-') : 'itself'}`,
    comment,
    severity: 'error',
    from: { path: `^src/${name}/` },
    to: { path: '^(src|workers)/', pathNot: [`^src/(${ok})/`, '^src/config\\.ts$'] },
  };
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Circular imports fail the build (DESIGN.md).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    layer('tensors', [], 'tensors imports nothing of ours.'),
    layer('merge', ['tensors'], 'merge is pure tensor math: only tensors.'),
    layer('model', ['tensors'], 'model (tfjs runtime) imports only tensors.'),
    layer('eval', ['tensors', 'merge', 'model'], 'eval imports only tensors, merge (its pure math: linear algebra, adapter readers, method declarations) and model.'),
    layer('store', ['tensors'], 'store imports only tensors.'),
    layer('webhooks', ['queue'], 'webhooks (callback URL rules, signatures, delivery) imports only the queue contract.'),
    {
      name: 'queue-imports-only-types-of-ours',
      comment: 'The queue contract imports nothing of ours but types, so producers and workers share it freely.',
      severity: 'error',
      from: { path: '^src/queue/' },
      to: { path: '^(src|workers)/', pathNot: '^src/queue/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'api-imports-store-queue-merge',
      comment: 'The API imports store, queue and merge (registry and recipe schema), never the runtimes.',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^(src/(model|eval|cli)|workers)/' },
    },
    {
      name: 'src-never-imports-workers-cli-tests',
      comment: 'Only the CLI wires everything; nothing in src below it imports the CLI, the workers, tests or benches.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^(src/cli|workers|test|bench|scripts)/' },
    },
    {
      name: 'workers-never-import-api-cli',
      comment: 'Workers import queue, store, merge, model and eval; the API and CLI are the other side of the queue.',
      severity: 'error',
      from: { path: '^workers/' },
      to: { path: '^src/(api|cli)/' },
    },
    {
      name: 'no-frameworks-below-api',
      comment: 'tensors, merge, store and queue never import fastify, pino or tfjs (DESIGN.md, STYLE.md).',
      severity: 'error',
      from: { path: '^src/(tensors|merge|store|queue)/' },
      to: { path: FRAMEWORKS, pathNot: '(^|/)node_modules/bullmq/' },
    },
    {
      name: 'bullmq-only-in-queue',
      comment: 'BullMQ lives behind the queue module; the data layers never see it.',
      severity: 'error',
      from: { path: '^src/(tensors|merge|store|model|eval)/' },
      to: { path: '(^|/)node_modules/bullmq/' },
    },
    {
      name: 'queue-contract-types-only-from-bullmq',
      comment: 'contract.ts is shared by producers and sandboxed processors: it takes only types from bullmq.',
      severity: 'error',
      from: { path: '^src/queue/contract\\.ts$' },
      to: { path: '(^|/)node_modules/bullmq/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-servers-in-model-eval',
      comment: 'model and eval are computation: no fastify, pino or bullmq.',
      severity: 'error',
      from: { path: '^src/(model|eval)/' },
      to: { path: '(^|/)node_modules/(fastify|@fastify/[^/]+|fastify-plugin|pino|pino-[^/]+)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
