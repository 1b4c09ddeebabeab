import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadRuntimeSettings } from '../../src/config.ts';
import {
  backendOptions,
  initBackend,
  resetBackendChoice,
  vulkanLoaderPresent,
} from '../../src/model/backend.ts';
import { tempDir } from '../helpers/redis.ts';

/** Starts the runtime as a service does: settings from src/config.ts, handed to initBackend. */
const SIMD_PROBE = `
import { loadRuntimeSettings } from './src/config.ts';
import { backendOptions, initBackend } from './src/model/backend.ts';
import { simdKernelsActive } from './src/model/simd/simd-kernels.ts';
const info = await initBackend(backendOptions(loadRuntimeSettings()));
process.stdout.write(JSON.stringify({ tfBackend: info.tfBackend, simd: simdKernelsActive() }));
`;

describe('backend choice', () => {
  afterEach(resetBackendChoice);
  const quiet = { log: () => {} };

  it('auto passes over what this machine lacks (tfjs-node, a WebGPU adapter) and lands on a running backend', async () => {
    const info = await initBackend({ ...quiet, prefer: 'auto' });
    assert.equal(tf.getBackend(), info.tfBackend);
    const order = ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];
    assert.deepEqual(
      info.skipped.map((s) => s.choice),
      order.slice(0, order.indexOf(info.choice)),
    );
    assert.equal(
      tf.tidy(() => tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]),
      5,
    );
  });

  it('looks for the Vulkan loader where dlopen would, and skips WebGPU without it (no native warning printed)', () => {
    const dir = tempDir('lorafuse-vulkan');
    try {
      const without = path.join(dir.dir, 'ld.so.cache.without');
      const withLoader = path.join(dir.dir, 'ld.so.cache.with');
      writeFileSync(without, Buffer.from('ld.so-1.7.0\0libc.so.6\0/lib/x86_64-linux-gnu/libc.so.6\0'));
      writeFileSync(withLoader, Buffer.from('ld.so-1.7.0\0libvulkan.so.1\0/usr/lib/libvulkan.so.1\0'));
      assert.equal(vulkanLoaderPresent('', without), false);
      assert.equal(vulkanLoaderPresent('', withLoader), true);
      assert.equal(
        vulkanLoaderPresent('', path.join(dir.dir, 'missing')),
        true,
        'no cache: Dawn looks itself',
      );
      writeFileSync(path.join(dir.dir, 'libvulkan.so.1'), '');
      assert.equal(vulkanLoaderPresent(`/nowhere:${dir.dir}`, without), true);
    } finally {
      dir.remove();
    }
    if (vulkanLoaderPresent(loadRuntimeSettings().librarySearchPath)) return; // this machine has the loader: Dawn decides
    const started = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', SIMD_PROBE],
      {
        env: { ...process.env, LORAFUSE_BACKEND: 'auto' },
        encoding: 'utf8',
        cwd: path.resolve(import.meta.dirname, '../..'),
      },
    );
    assert.equal(started.status, 0, started.stderr);
    assert.doesNotMatch(started.stderr, /Vulkan: libvulkan/);
  });

  it('an explicit choice that cannot start fails over to wasm', async () => {
    const info = await initBackend({ ...quiet, prefer: 'webgpu' });
    if (info.choice === 'webgpu') return; // a machine with a GPU: nothing to fail over from
    assert.equal(info.choice, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(info.skipped[0].choice, 'webgpu');
  });

  it('LORAFUSE_BACKEND=cpu, parsed by src/config.ts and passed down, runs on cpu, and the choice is logged', async () => {
    const lines: string[] = [];
    const settings = loadRuntimeSettings({ LORAFUSE_BACKEND: 'cpu' });
    const info = await initBackend({ ...backendOptions(settings), log: (line) => lines.push(line) });
    assert.equal(info.choice, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.match(lines.join('\n'), /tfjs backend cpu/);
  });

  it('LORAFUSE_SIMD_KERNELS=0 keeps wasm on tfjs kernels, and says why (in a fresh process: kernels stay once installed)', () => {
    const probe = (simd: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SIMD_PROBE], {
        env: { ...process.env, LORAFUSE_BACKEND: 'wasm', LORAFUSE_SIMD_KERNELS: simd },
        encoding: 'utf8',
        cwd: path.resolve(import.meta.dirname, '../..'),
      });
    const off = probe('0');
    assert.equal(off.status, 0, off.stderr);
    assert.deepEqual(JSON.parse(off.stdout), { tfBackend: 'wasm', simd: false });
    assert.match(off.stderr, /SIMD kernels off: LORAFUSE_SIMD_KERNELS=0/);
    const on = probe('1');
    assert.equal(on.status, 0, on.stderr);
    assert.deepEqual(JSON.parse(on.stdout), { tfBackend: 'wasm', simd: true });
  });

  it('rejects an unknown backend name', async () => {
    await assert.rejects(initBackend({ ...quiet, prefer: 'quantum' }), /not one of/);
  });
});
