// Chooses and starts the tfjs backend once per thread (tfjs-node-gpu, tfjs-node, WebGPU, wasm, cpu) and installs
// lorafuse's kernels on it.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { installFastGradients, shareIdentityOnWasm } from './fast-gradients.ts';
import { installSimdKernels, simdKernelsUnavailableReason } from './simd/simd-kernels.ts';

/** The backends lorafuse can run on, in the order it tries them. */
export type BackendChoice = 'tfjs-node-gpu' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendChoice[] = [
  'tfjs-node-gpu',
  'tfjs-node',
  'webgpu',
  'wasm',
  'cpu',
];

export interface BackendInfo {
  choice: BackendChoice;
  /** What tf.getBackend() reports once the choice is active ('tensorflow' for both tfjs-node packages). */
  tfBackend: string;
  /** Why the earlier choices were passed over. */
  skipped: Array<{ choice: BackendChoice; reason: string }>;
}

const require = createRequire(import.meta.url);
let active: Promise<BackendInfo> | null = null;
/** The search path the active choice was made with: runtime worker threads choose theirs with the same one. */
let activeSearchPath = '';

export interface BackendOptions {
  /** A backend to try first (config.runtime.backend, LORAFUSE_BACKEND); unset or `auto`: the order above. */
  prefer?: string;
  /** lorafuse's wasm SIMD kernels (config.runtime.simdKernels, LORAFUSE_SIMD_KERNELS); default on. */
  simdKernels?: boolean;
  /**
   * The dynamic linker's search path (LD_LIBRARY_PATH, read by src/config.ts like every setting): where the WebGPU
   * probe looks for the Vulkan loader beside the linker's cache. Default: the cache only.
   */
  librarySearchPath?: string;
  log?: (line: string) => void;
}

/** The options src/config.ts's runtime settings stand for. */
export function backendOptions(settings: {
  backend: string;
  simdKernels: boolean;
  librarySearchPath: string;
}): BackendOptions {
  return {
    prefer: settings.backend,
    simdKernels: settings.simdKernels,
    librarySearchPath: settings.librarySearchPath,
  };
}

/**
 * Picks and activates the fastest backend available (`prefer` overrides the order) once per thread; later calls
 * return the same answer. Verifies with tf.getBackend() because setBackend can fail quietly.
 */
export function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  if (!active) {
    activeSearchPath = options.librarySearchPath ?? '';
    active = chooseBackend(options.prefer, options.simdKernels ?? true, activeSearchPath, options.log);
  }
  return active;
}

/** The library search path this thread's backend was chosen with ('' before initBackend). */
export function backendLibrarySearchPath(): string {
  return activeSearchPath;
}

/** Forgets the choice so the next initBackend picks again (tests switching backends). */
export function resetBackendChoice(): void {
  active = null;
}

async function chooseBackend(
  prefer: string | undefined,
  simdKernels: boolean,
  librarySearchPath: string,
  log = defaultLog,
): Promise<BackendInfo> {
  const wanted = parsePreference(prefer);
  const skipped: BackendInfo['skipped'] = [];
  for (const choice of wanted) {
    try {
      const reason = await activate(choice, librarySearchPath);
      if (reason === null) {
        installFastGradients();
        shareIdentityOnWasm();
        const simd = await installSimdKernels(simdKernels);
        const info = { choice, tfBackend: tf.getBackend(), skipped };
        const kernels =
          info.tfBackend !== 'wasm'
            ? ''
            : simd
              ? ', SIMD kernels'
              : ` (SIMD kernels off: ${simdKernelsUnavailableReason()})`;
        log(`lorafuse: tfjs backend ${choice} (${info.tfBackend})${kernels}`);
        return info;
      }
      skipped.push({ choice, reason });
    } catch (error) {
      skipped.push({ choice, reason: (error as Error).message });
    }
  }
  throw new Error(
    `no tfjs backend could start: ${skipped.map((s) => `${s.choice}: ${s.reason}`).join('; ')}`,
  );
}

function parsePreference(prefer: string | undefined): BackendChoice[] {
  if (!prefer || prefer === 'auto') return [...BACKEND_ORDER];
  if (!(BACKEND_ORDER as readonly string[]).includes(prefer)) {
    throw new Error(`LORAFUSE_BACKEND=${prefer} is not one of ${BACKEND_ORDER.join(', ')} or auto`);
  }
  // An explicit choice still falls back (wasm, then cpu) so a missing GPU never stops a job.
  const fallbacks = BACKEND_ORDER.filter((c) => c === 'wasm' || c === 'cpu');
  return [prefer as BackendChoice, ...fallbacks.filter((c) => c !== prefer)];
}

/** Returns null when the backend is active, or the reason it is not. */
async function activate(choice: BackendChoice, librarySearchPath: string): Promise<string | null> {
  switch (choice) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      const packageName = `@tensorflow/${choice}`;
      if (!isInstalled(packageName)) return 'not installed';
      await import(packageName); // name held in a variable: tsc passes without the optional package
      return (await setAndVerify('tensorflow')) ? null : 'setBackend(tensorflow) failed';
    }
    case 'webgpu': {
      if (!vulkanLoaderPresent(librarySearchPath))
        return 'no Vulkan loader (libvulkan.so.1), so no WebGPU adapter';
      if (!(await exposeWebGpu())) return 'no WebGPU adapter';
      await import('@tensorflow/tfjs-backend-webgpu');
      return (await setAndVerify('webgpu')) ? null : 'setBackend(webgpu) failed';
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const distDir = path.dirname(
        require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'),
      );
      wasm.setWasmPaths(`${distDir}${path.sep}`);
      return (await setAndVerify('wasm')) ? null : 'setBackend(wasm) failed';
    }
    case 'cpu':
      return (await setAndVerify('cpu')) ? null : 'setBackend(cpu) failed';
  }
}

function isInstalled(packageName: string): boolean {
  try {
    require.resolve(packageName);
    return true;
  } catch {
    return false;
  }
}

const VULKAN_LOADER = 'libvulkan.so.1';

/**
 * Dawn on Linux reaches the GPU through the Vulkan loader; without it Dawn finds no adapter and prints a native
 * warning on stderr for every process that asks, so the loader is looked for first (the dynamic linker's cache
 * and the library search path, LD_LIBRARY_PATH's value, where dlopen would find it).
 */
export function vulkanLoaderPresent(librarySearchPath: string, cacheFile = '/etc/ld.so.cache'): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = librarySearchPath.split(':').filter(Boolean);
  if (dirs.some((dir) => existsSync(path.join(dir, VULKAN_LOADER)))) return true;
  try {
    return readFileSync(cacheFile).includes(VULKAN_LOADER);
  } catch {
    return true; // no cache to read: let Dawn look for itself
  }
}

/** Dawn's Node binding provides navigator.gpu; a machine without a GPU has no adapter. */
async function exposeWebGpu(): Promise<boolean> {
  if (!isInstalled('webgpu')) return false;
  const moduleName = 'webgpu';
  const dawn = (await import(moduleName)) as {
    create?: (flags: string[]) => unknown;
    globals?: Record<string, unknown>;
  };
  if (typeof dawn.create !== 'function') return false;
  const gpu = dawn.create([]) as { requestAdapter(): Promise<unknown> };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return false;
  Object.assign(globalThis, dawn.globals ?? {});
  const nav = (globalThis as { navigator?: Record<string, unknown> }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
  return true;
}

async function setAndVerify(name: string): Promise<boolean> {
  const ok = await tf.setBackend(name);
  await tf.ready();
  return ok && tf.getBackend() === name;
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}
