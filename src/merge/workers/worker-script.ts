// The merge worker's code as one CommonJS script, bundled once per process by esbuild (the compiler tsx
// itself runs on). A worker started from it loads no TypeScript loader: under tsx, every worker thread
// registered its own loader hooks (another thread in Node 20) and resolved, read and compiled ~70
// source files one by one: ~7k page faults, ~0.2 s of kernel and ~0.4 s of user time per worker, per
// merge, which was most of a task_arithmetic merge's system time that did not scale with the model.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

type BuildSync = typeof import('esbuild').buildSync;

/** undefined: not tried yet; null: esbuild is missing or failed (workers fall back to tsx). */
let script: string | null | undefined;

/** The bundled source of `entry` (a file: URL), or undefined when it cannot be bundled here. */
export function bundledWorkerScript(entry: string): string | undefined {
  if (script === undefined) {
    try {
      const { buildSync } = createRequire(import.meta.url)('esbuild') as { buildSync: BuildSync };
      const result = buildSync({
        entryPoints: [fileURLToPath(entry)],
        bundle: true,
        format: 'cjs',
        platform: 'node',
        target: `node${process.versions.node.split('.')[0]}`,
        write: false,
        logLevel: 'silent',
      });
      script = result.outputFiles[0].text;
    } catch {
      script = null;
    }
  }
  return script ?? undefined;
}
