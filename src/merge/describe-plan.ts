// The --dry-run text: each tensor's action, method and resolved parameters, the output layout and
// a memory estimate, so a user can check a recipe before spending a merge on it.
import { DTYPE_BYTES } from '../tensors/index.ts';
import type { ParameterValue } from './method.ts';
import type { MergePlan } from './plan-types.ts';

function formatValue(value: ParameterValue): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

function formatParams(params: Record<string, ParameterValue>): string {
  const entries = Object.entries(params);
  return entries.length === 0 ? '{}' : `{ ${entries.map(([k, v]) => `${k}: ${formatValue(v)}`).join(', ')} }`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function describePlan(plan: MergePlan): string {
  const lines: string[] = [];
  const method = plan.method;
  lines.push(`method: ${method.name} (${method.kind}) - ${method.description}`);
  if (method.notes) lines.push(`  note: ${method.notes}`);
  lines.push('inputs (in merge order):');
  plan.inputs.forEach((input, i) => {
    lines.push(
      `  [${i}] ${input.ref}${input.isBase ? ' (base)' : ''}${input.kind !== 'model' ? ` [${input.kind}]` : ''}`,
    );
  });
  lines.push(
    `layers: ${plan.layerCount} (from ${plan.layerCountSource}); seed: ${plan.seed}; compute: float32`,
  );
  if (plan.deltaSpace) {
    lines.push(`lora: space delta, rank ${plan.deltaSpace.rank}, output ${plan.deltaSpace.output}`);
  }
  const outputBytes = plan.tensors.reduce(
    (sum, t) => sum + t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype],
    0,
  );
  const dtypes = [...new Set(plan.tensors.map((t) => t.dtype))].join(', ');
  lines.push(
    `output: ${plan.output.kind} folder, ${plan.tensors.length} tensors (${dtypes}), ${formatBytes(outputBytes)} in ${plan.output.stem}*.safetensors` +
      (plan.output.kind === 'model'
        ? plan.output.config
          ? ' + config.json'
          : ''
        : ' + adapter_config.json + lorafuse.json'),
  );
  lines.push(
    `memory estimate: ~${formatBytes(plan.memoryEstimateBytes)} ((inputs + 2) x largest tensor in float32 + runtime)`,
  );
  if (plan.modules.length > 0) {
    lines.push(`modules (${plan.modules.length}):`);
    for (const module of plan.modules) {
      const ranks = module.layouts.map((l) => l.rank).join('/');
      lines.push(`  ${module.module} ranks ${ranks} t=${module.t} global ${formatParams(module.global)}`);
      module.perModel.forEach((params, i) => {
        lines.push(`    ${plan.inputs[i].ref}: ${formatParams(params)}`);
      });
    }
  }
  lines.push(`tensors (${plan.tensors.length}):`);
  for (const tensor of plan.tensors) {
    const head = `  ${tensor.name} [${tensor.shape.join(', ')}] ${tensor.dtype}`;
    if (tensor.action === 'copy') {
      lines.push(`${head} copy${tensor.note ? ` (${tensor.note})` : ''}`);
      continue;
    }
    lines.push(`${head} ${method.name} t=${tensor.t} global ${formatParams(tensor.global)}`);
    tensor.perModel.forEach((params, i) => {
      if (Object.keys(params).length > 0) lines.push(`    ${plan.inputs[i].ref}: ${formatParams(params)}`);
    });
  }
  if (plan.warnings.length > 0) {
    lines.push('warnings:');
    for (const warning of plan.warnings) lines.push(`  - ${warning}`);
  }
  return `${lines.join('\n')}\n`;
}
