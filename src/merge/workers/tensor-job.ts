// The message a merge worker receives for one tensor, and how it runs it (also used inline, so a
// pooled and an unpooled merge run exactly the same code).
import type { ParameterValue, TensorInput } from '../method.ts';
import { randomForTensor } from '../random.ts';
import { getMethod } from '../registry.ts';

export interface TensorJob {
  id: number;
  method: string;
  tensorName: string;
  shape: number[];
  inputs: TensorInput[];
  params: Record<string, ParameterValue>;
  seed: number;
}

export function runTensorJob(job: TensorJob): Float32Array {
  const method = getMethod(job.method);
  if (method?.kind !== 'tensor') throw new Error(`no tensor method ${job.method}`);
  return method.mergeTensor({
    tensorName: job.tensorName,
    shape: job.shape,
    inputs: job.inputs,
    params: job.params,
    random: randomForTensor(job.seed, job.tensorName),
    // Each job's arrays are fresh reads (or transferred copies) that nothing else keeps.
    inputsWritable: true,
  });
}
