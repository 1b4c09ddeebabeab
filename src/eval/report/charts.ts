// Server-side charts for report.html: Vega-Lite specs compiled by vega-lite and drawn to an SVG string by
// vega's headless renderer (no DOM, no canvas, no script in the output), so reports read and print without
// JavaScript. vega is imported on first use: the API process only pays for it when it renders a report.
// Measured on the 2-core dev machine: import 50 ms once, 140-170 ms per 21×21 heatmap.

type VegaLiteSpec = Record<string, unknown>;

let renderer: Promise<(spec: VegaLiteSpec) => Promise<string>> | null = null;

async function loadRenderer(): Promise<(spec: VegaLiteSpec) => Promise<string>> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  return async (spec) => {
    const compiled = vegaLite.compile(spec as never).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    try {
      return await view.toSVG();
    } finally {
      view.finalize();
    }
  };
}

/** Renders a Vega-Lite spec to a standalone <svg> string. */
export async function renderVegaLite(spec: VegaLiteSpec): Promise<string> {
  renderer ??= loadRenderer();
  const render = await renderer;
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: null } },
    ...spec,
  });
}

/** A short label for a grid value: at most 4 significant decimals, no float noise (0.30000000000000004 → 0.3). */
export function formatValue(value: number | string): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  return String(Number(value.toPrecision(4)));
}

export interface BarGroup {
  /** The category on the x axis (a task). */
  group: string;
  /** One bar per series (reference, merged, base); null values are left out. */
  values: Array<{ series: string; value: number | null }>;
}

export interface BarChartOptions {
  title: string;
  yTitle: string;
  /** Series in legend order. */
  series: string[];
  groups: BarGroup[];
  /** Fixed y domain (e.g. [0, 1] for accuracies). */
  yDomain?: [number, number];
  width?: number;
}

/** Grouped bars: one group per category, one bar per series (e.g. per task: reference vs merged vs base). */
export async function groupedBarChart(options: BarChartOptions): Promise<string> {
  const values = options.groups.flatMap((g) =>
    g.values
      .filter((v): v is { series: string; value: number } => v.value !== null && Number.isFinite(v.value))
      .map((v) => ({ group: g.group, series: v.series, value: v.value, label: formatValue(v.value) })),
  );
  const groups = options.groups.map((g) => g.group);
  const width =
    options.width ?? Math.max(240, Math.min(900, groups.length * options.series.length * 26 + 80));
  return renderVegaLite({
    title: options.title,
    width,
    height: 220,
    data: { values },
    mark: { type: 'bar', tooltip: false },
    encoding: {
      x: { field: 'group', type: 'nominal', sort: groups, title: null, axis: { labelAngle: 0 } },
      xOffset: { field: 'series', type: 'nominal', sort: options.series },
      y: {
        field: 'value',
        type: 'quantitative',
        title: options.yTitle,
        ...(options.yDomain ? { scale: { domain: options.yDomain } } : {}),
      },
      color: {
        field: 'series',
        type: 'nominal',
        sort: options.series,
        title: null,
        scale: { domain: options.series, range: ['#7f7f7f', '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'] },
        legend: { orient: 'top' },
      },
    },
  });
}

export interface HeatmapOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  /** Column labels (values[i][j] is at row yValues[i], column xValues[j]). */
  xValues: Array<number | string>;
  yValues: Array<number | string>;
  values: number[][];
  colorTitle: string;
  /** Fixed color domain (cosines: [−1, 1]); else the data's extent. */
  colorDomain?: [number, number];
  /** A diverging scheme centred at 0 (cosines) or a sequential one (errors, accuracies). */
  scheme?: 'diverging' | 'sequential' | 'sequential-reversed';
  /** The cell to outline (the chosen search point), as row and column indices. */
  marked?: { row: number; column: number; label?: string };
  /** Draw each cell's value in it (default: when there are at most 144 cells). */
  cellLabels?: boolean;
  /** Numeric rows read upwards (largest at the top), as in a plot; default true for numeric rows. */
  rowsUpward?: boolean;
}

/** A heatmap with labelled axes, a colour legend and an optionally outlined cell. */
export async function heatmap(options: HeatmapOptions): Promise<string> {
  const xs = options.xValues.map(formatValue);
  const ys = options.yValues.map(formatValue);
  if (options.values.length !== ys.length || options.values.some((row) => row.length !== xs.length)) {
    throw new RangeError(`heatmap ${options.title}: values are not ${ys.length}×${xs.length}`);
  }
  const cells = options.values.flatMap((row, i) =>
    row.map((value, j) => ({ x: xs[j], y: ys[i], value, label: formatValue(Number(value.toFixed(3))) })),
  );
  const numericRows = options.yValues.every((v) => typeof v === 'number');
  const ySort = (options.rowsUpward ?? numericRows) ? [...ys].reverse() : ys;
  const cellSize = Math.max(12, Math.min(48, Math.floor(420 / Math.max(xs.length, ys.length))));
  const showLabels = options.cellLabels ?? xs.length * ys.length <= 144;
  // Names wider than a cell (input names on a cosine matrix) are slanted instead of overlapping.
  const xLabelAngle =
    options.xValues.some((x) => typeof x === 'string') && Math.max(...xs.map((x) => x.length)) * 6 > cellSize
      ? -40
      : 0;
  const scale: Record<string, unknown> =
    options.scheme === 'diverging'
      ? { scheme: 'redblue', reverse: true, domainMid: 0 }
      : { scheme: options.scheme === 'sequential-reversed' ? 'viridis' : 'blues', reverse: false };
  if (options.colorDomain) scale.domain = options.colorDomain;
  const layers: Record<string, unknown>[] = [
    {
      mark: { type: 'rect' },
      encoding: {
        color: { field: 'value', type: 'quantitative', title: options.colorTitle, scale },
      },
    },
  ];
  if (showLabels) {
    layers.push({
      mark: { type: 'text', fontSize: Math.min(11, cellSize / 3.2) },
      encoding: { text: { field: 'label', type: 'nominal' }, color: { value: '#111' } },
    });
  }
  if (options.marked) {
    const { row, column } = options.marked;
    layers.push({
      data: { values: [{ x: xs[column], y: ys[row], label: options.marked.label ?? 'chosen' }] },
      mark: { type: 'rect', fill: null, stroke: '#000', strokeWidth: 3 },
    });
  }
  return renderVegaLite({
    title: options.title,
    data: { values: cells },
    width: cellSize * xs.length,
    height: cellSize * ys.length,
    encoding: {
      x: { field: 'x', type: 'ordinal', sort: xs, title: options.xTitle, axis: { labelAngle: xLabelAngle } },
      y: { field: 'y', type: 'ordinal', sort: ySort, title: options.yTitle },
    },
    layer: layers,
  });
}
