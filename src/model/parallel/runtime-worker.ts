// One wasm runtime per worker thread: computes the loss and gradients of a batch shard for the parameters the
// main thread sends (data parallelism with gradient averaging), or evaluates a shard of a dataset.
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.ts';
import { ForwardContext } from '../forward-context.ts';
import { evaluateModel } from '../evaluate-model.ts';
import { loadModel } from '../load-model.ts';
import { loadAdapter } from '../lora/peft-adapter.ts';
import { computeGradients } from '../train/gradient-step.ts';
import { installHead } from '../train/task-head.ts';
import { createTrainableState } from '../train/trainable.ts';
import type { WorkerReply, WorkerRequest } from './messages.ts';

if (!parentPort) throw new Error('runtime-worker must run in a worker thread');
const port = parentPort;
let session: Awaited<ReturnType<typeof start>> | null = null;

async function start(request: Extract<WorkerRequest, { type: 'init' }>) {
  await initBackend({
    prefer: request.backend,
    simdKernels: request.simdKernels,
    librarySearchPath: request.librarySearchPath,
    log: () => {},
  });
  const model = await loadModel(request.modelDir, { extraWeights: request.extraWeights });
  if (request.head) installHead(model, request.head);
  if (request.state) {
    const state = createTrainableState(model, request.state);
    const ctx = new ForwardContext(model.params, state.lora, state.overrides);
    const dispose = () => {
      state.dispose();
      model.dispose();
    };
    return { model, state, ctx, dispose };
  }
  const adapter = request.adapterDir ? await loadAdapter(request.adapterDir, model) : null;
  const ctx = new ForwardContext(model.params, adapter?.modules, adapter?.overrides);
  const dispose = () => {
    adapter?.dispose();
    model.dispose();
  };
  return { model, state: null, ctx, dispose };
}

/** Ends the current job's session: the worker may serve another job (another model) next. */
function reset(): void {
  session?.dispose();
  session = null;
}

port.on('message', async (request: WorkerRequest) => {
  try {
    if (request.type === 'reset') {
      reset();
      return;
    }
    if (request.type === 'init') {
      reset();
      session = await start(request);
      port.postMessage({ type: 'ready' } satisfies WorkerReply);
      return;
    }
    if (!session) throw new Error('worker used before init');
    const { model, state, ctx } = session;
    if (request.type === 'evaluate') {
      const dataset = {
        inputs: new Map(Object.entries(request.inputs)),
        labels: request.labels,
        task: '',
        split: '',
        classNames: null,
      };
      const result = await evaluateModel(model, ctx, dataset);
      const reply: WorkerReply = {
        type: 'evaluated',
        lossSum: result.loss * result.examples,
        predictions: result.predictions,
      };
      port.postMessage(reply, [result.predictions.buffer as ArrayBuffer]);
      return;
    }
    if (!state) throw new Error('worker started for evaluation was asked for gradients');
    for (const [key, values] of Object.entries(request.values)) {
      const variable = state.variables.get(key)!;
      tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
    }
    const inputs = new Map(Object.entries(request.inputs));
    const { loss, grads } = computeGradients(model, ctx, state.variables, inputs, request.labels);
    const out: Record<string, Float32Array> = {};
    for (const [key, g] of grads) {
      out[key] = (await g.data()) as Float32Array;
      g.dispose();
    }
    const lossValue = (await loss.data())[0];
    loss.dispose();
    const reply: WorkerReply = { type: 'grads', loss: lossValue, grads: out };
    port.postMessage(
      reply,
      Object.values(out).map((a) => a.buffer as ArrayBuffer),
    );
  } catch (error) {
    port.postMessage({
      type: 'error',
      message: (error as Error).stack ?? String(error),
      name: (error as Error).name,
    } satisfies WorkerReply);
  }
});
