// The paper-style table: rows = merge method (and, for LoRA modes, the merge space), columns = fine-tuning mode,
// cells = average absolute / normalized test accuracy over the tasks; plus the individual accuracies and the
// mean off-diagonal task-vector cosine per mode.
import type { AnalysisOutcome, MergeOutcome, MergeSpace } from './runner.ts';
import type { FinetuneModeName, MergeMethodName } from './presets.ts';

export interface TableRow {
  label: string;
  method: MergeMethodName | 'individual' | 'pre-trained';
  space: MergeSpace;
  /** Per mode: [average absolute, average normalized] test accuracy, null where not run or failed. */
  cells: Record<string, [number | null, number | null] | null>;
}

export interface StudyTable {
  modes: FinetuneModeName[];
  rows: TableRow[];
  /** Per mode, per task: the individually fine-tuned model's test accuracy. */
  individual: Record<string, Record<string, number | null>>;
  /** Per task: the pre-trained backbone read through the task's head. */
  pretrained: Record<string, number | null>;
  cosine: Record<string, { parameters: number | null; delta: number | null; disentanglement: number | null }>;
}

const METHOD_LABELS: Record<MergeMethodName, string> = {
  average: 'simple averaging',
  task_arithmetic: 'task arithmetic',
  ties: 'TIES-merging',
  lorahub: 'LoraHub',
};

const mean = (values: Array<number | null>) => {
  const known = values.filter((v): v is number => v !== null);
  return known.length === values.length && known.length > 0
    ? known.reduce((a, b) => a + b, 0) / known.length
    : null;
};

function evaluationAccuracy(
  report: NonNullable<MergeOutcome['report']>,
  key: string | null | undefined,
): number | null {
  if (!key) return null;
  return report.evaluations.find((e) => e.key === key)?.accuracy ?? null;
}

export function buildTable(
  modes: FinetuneModeName[],
  methods: MergeMethodName[],
  tasks: string[],
  merges: MergeOutcome[],
  analyses: AnalysisOutcome[],
): StudyTable {
  const individual: StudyTable['individual'] = {};
  const pretrained: StudyTable['pretrained'] = Object.fromEntries(tasks.map((t) => [t, null]));
  for (const mode of modes) {
    individual[mode] = Object.fromEntries(tasks.map((t) => [t, null]));
    // Every merge report of the mode evaluates the same references (cached by the service): take the first.
    const report = merges.find((m) => m.mode === mode && m.report)?.report;
    for (const row of report?.tasks ?? []) {
      individual[mode][row.task] = row.referenceAccuracy;
      pretrained[row.task] ??= evaluationAccuracy(report!, row.base?.test);
    }
  }
  const rows: TableRow[] = [
    {
      label: 'individual (no merge)',
      method: 'individual',
      space: null,
      cells: Object.fromEntries(
        modes.map((mode) => [
          mode,
          individual[mode] ? [mean(tasks.map((t) => individual[mode][t])), 1] : null,
        ]),
      ),
    },
  ];
  const pretrainedMean = mean(tasks.map((t) => pretrained[t]));
  rows.push({
    label: 'pre-trained, task heads only',
    method: 'pre-trained',
    space: null,
    cells: Object.fromEntries(
      modes.map((mode) => {
        const normalized = mean(
          tasks.map((t) => {
            const ref = individual[mode]?.[t];
            return ref && pretrained[t] !== null ? pretrained[t]! / ref : null;
          }),
        );
        return [mode, [pretrainedMean, normalized]];
      }),
    ),
  });
  for (const method of methods) {
    const spaces: MergeSpace[] = method === 'lorahub' ? ['parameters'] : ['parameters', 'delta'];
    const anyLora = modes.some((m) => m !== 'full');
    for (const space of anyLora ? spaces : ['parameters' as const]) {
      const cells: TableRow['cells'] = {};
      for (const mode of modes) {
        const merge = merges.find(
          (m) =>
            m.mode === mode &&
            m.method === method &&
            (mode === 'full' ? space === 'parameters' : m.space === space),
        );
        cells[mode] = merge?.report
          ? [merge.report.averages.accuracy, merge.report.averages.normalizedAccuracy]
          : null;
      }
      const spaceLabel = !anyLora ? '' : space === 'delta' ? ' · ΔW space' : ' · parameter space';
      rows.push({ label: `${METHOD_LABELS[method]}${spaceLabel}`, method, space, cells });
    }
  }
  const cosine: StudyTable['cosine'] = {};
  for (const mode of modes) {
    const a = analyses.find((x) => x.mode === mode);
    cosine[mode] = {
      parameters: a?.meanOffDiagonalCosine ?? null,
      delta: a?.meanOffDiagonalDeltaCosine ?? null,
      disentanglement: a?.meanDisentanglementError ?? null,
    };
  }
  return { modes, rows, individual, pretrained, cosine };
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : (100 * v).toFixed(1));

/** The table as printed: fixed-width text, one cell "absolute / normalized" in percent. */
export function formatTable(table: StudyTable, tasks: string[]): string {
  const width = Math.max(...table.rows.map((r) => r.label.length), 28);
  const head = `${'method'.padEnd(width)}  ${table.modes.map((m) => (m === 'llora' ? 'L-LoRA' : m === 'lora' ? 'LoRA' : 'full').padStart(13)).join('  ')}`;
  const lines = [
    "Average test accuracy over the tasks, absolute / normalized (% of each task's individual fine-tune), per fine-tuning mode:",
    '',
    head,
    '-'.repeat(head.length),
  ];
  for (const row of table.rows) {
    const cells = table.modes.map((mode) => {
      const cell = row.cells[mode];
      return (cell ? `${pct(cell[0])} / ${pct(cell[1])}` : 'n/a').padStart(13);
    });
    lines.push(`${row.label.padEnd(width)}  ${cells.join('  ')}`);
  }
  lines.push('', 'Individual test accuracy (%) per task:', '');
  const taskWidth = Math.max(12, ...tasks.map((t) => t.length));
  lines.push(
    `${'task'.padEnd(taskWidth)}  ${'pre-trained'.padStart(11)}  ${table.modes.map((m) => m.padStart(7)).join('  ')}`,
  );
  for (const task of tasks) {
    lines.push(
      `${task.padEnd(taskWidth)}  ${pct(table.pretrained[task]).padStart(11)}  ${table.modes.map((m) => pct(table.individual[m]?.[task]).padStart(7)).join('  ')}`,
    );
  }
  lines.push(
    '',
    'Mean off-diagonal cosine of the task vectors (and mean disentanglement error ξ of the first two tasks):',
    '',
  );
  for (const mode of table.modes) {
    const c = table.cosine[mode];
    const fmt = (v: number | null) => (v === null ? '—' : v.toFixed(3));
    lines.push(
      `  ${mode.padEnd(6)} parameters ${fmt(c.parameters)}${mode === 'full' ? '' : `   ΔW ${fmt(c.delta)}`}   ξ ${fmt(c.disentanglement)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
