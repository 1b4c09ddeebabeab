// Merging one LoRA target module: PEFT-style adapter methods run on the factors; tensor methods run in
// delta space on ΔWᵢ = sᵢ·Bᵢ·Aᵢ and the result is re-factored to rank R (scaling folded in, new
// lora_alpha = R). Linear methods never form a dense out×in matrix for an adapter output: their merge is
// Σ cᵢ·sᵢ·Bᵢ·Aᵢ, factored exactly from the stacked thin factors. Others merge the dense deltas and go
// through a seeded truncated SVD that reports its relative Frobenius error.
import { MergePlanError } from '../errors.ts';
import { fromArray } from '../linalg/dense.ts';
import type { LoraModuleInput, MergeMethod, ParameterValue, RandomStream, TensorInput } from '../method.ts';
import {
  adapterDelta,
  concatenatedFactors,
  denseLinearDelta,
  type Refactored,
  refactorDense,
  refactorProduct,
  stackedFactors,
} from './delta-factorize.ts';
import { linearCoefficients } from './delta-linearity.ts';

export interface DeltaSpaceOptions {
  rank: number | 'full';
  output: 'adapter' | 'model';
}

export interface ModuleMergeResult {
  a?: Float32Array;
  b?: Float32Array;
  rank?: number;
  /** [out, in] when output = model. */
  delta?: Float32Array;
  relativeError?: number;
}

export function mergeLoraModule(args: {
  method: MergeMethod;
  moduleName: string;
  adapters: LoraModuleInput[];
  params: Record<string, ParameterValue>;
  delta?: DeltaSpaceOptions;
  random: (stream: string) => RandomStream;
}): ModuleMergeResult {
  const { method, moduleName, adapters, params, delta } = args;
  if (adapters.length === 0) throw new MergePlanError('method_inputs', `no adapter has module ${moduleName}`);
  checkModuleShapes(moduleName, adapters);
  const { outFeatures: out, inFeatures: inF } = adapters[0];

  if (method.kind === 'adapter') {
    const merged = method.mergeModule({ moduleName, adapters, params });
    if (delta?.output === 'model') {
      const unit: LoraModuleInput = { ...merged, inFeatures: inF, outFeatures: out, scaling: 1, params: {} };
      return { delta: adapterDelta(unit) };
    }
    if (delta && typeof delta.rank === 'number' && delta.rank !== merged.rank) {
      return asResult(
        refactorProduct(
          fromArray(out, merged.rank, merged.b),
          fromArray(merged.rank, inF, merged.a),
          delta.rank,
        ),
      );
    }
    return { a: merged.a, b: merged.b, rank: merged.rank, relativeError: 0 };
  }

  if (method.kind === 'data-driven')
    throw new Error(`${method.name} is data-driven: it is not planned per module`);
  if (!delta) {
    throw new MergePlanError(
      'lora_space',
      `${method.name} merges tensors: LoRA module ${moduleName} needs lora.space delta here (parameters space is planned per tensor)`,
      { tensor: moduleName },
    );
  }
  const withBase = method.baseModel === 'required'; // the base model's delta is zero
  const totalRank = adapters.reduce((acc, adapter) => acc + adapter.rank, 0);
  const rank = delta.rank === 'full' ? totalRank : delta.rank;
  const coefs = linearCoefficients(method, {
    withBase,
    params,
    modelParams: adapters.map((adapter) => adapter.params),
  });

  if (coefs) {
    if (delta.output === 'model') return { delta: denseLinearDelta(adapters, coefs) };
    if (delta.rank === 'full') return asResult(concatenatedFactors(adapters, coefs));
    const { b, a } = stackedFactors(adapters, coefs);
    return asResult(refactorProduct(b, a, rank));
  }

  const inputs: TensorInput[] = adapters.map((adapter, i) => ({
    model: `adapter ${i}`,
    isBase: false,
    data: adapterDelta(adapter),
    params: adapter.params,
  }));
  if (withBase) inputs.push({ model: 'base', isBase: true, data: new Float32Array(out * inF), params: {} });
  const merged = method.mergeTensor({
    tensorName: `${moduleName}.weight`,
    shape: [out, inF],
    inputs,
    params,
    random: args.random,
  });
  if (delta.output === 'model') return { delta: merged };
  return asResult(refactorDense(merged, out, inF, rank, args.random(`lora-svd:${moduleName}`)));
}

function asResult(factors: Refactored): ModuleMergeResult {
  return { a: factors.a, b: factors.b, rank: factors.rank, relativeError: factors.relativeError };
}

/** Every adapter's module has the first one's shape, and its factors the sizes its rank implies. */
export function checkModuleShapes(moduleName: string, adapters: readonly LoraModuleInput[]): void {
  const { outFeatures, inFeatures } = adapters[0];
  for (const adapter of adapters) {
    if (adapter.outFeatures !== outFeatures || adapter.inFeatures !== inFeatures) {
      throw new MergePlanError(
        'shape_mismatch',
        `${moduleName}: adapters disagree on the module shape (${adapter.outFeatures}x${adapter.inFeatures} vs ${outFeatures}x${inFeatures})`,
        { tensor: moduleName },
      );
    }
    if (adapter.a.length !== adapter.rank * inFeatures || adapter.b.length !== outFeatures * adapter.rank) {
      throw new MergePlanError(
        'shape_mismatch',
        `${moduleName}: lora_A/lora_B sizes do not match rank ${adapter.rank}`,
        {
          tensor: moduleName,
        },
      );
    }
  }
}
