// Validates a report's files: report.json must be a JSON object of a known schemaVersion with a kind,
// and report.html must be present beside it (the page is rendered from the JSON by the job that wrote it).
import { REPORT_HTML, REPORT_JSON } from './artifact-layout.ts';
import { ArtifactValidationError } from './errors.ts';
import { readJsonObject } from './read-json.ts';
import type { ArtifactSummary } from './types.ts';

const REPORT_KINDS = new Set(['merge', 'search', 'analysis', 'study']);

export async function inspectReport(files: Record<string, string>): Promise<ArtifactSummary> {
  for (const name of [REPORT_JSON, REPORT_HTML]) {
    if (!files[name]) {
      throw new ArtifactValidationError('missing-file', `a report needs ${name}`, { file: name });
    }
  }
  const report = await readJsonObject(files[REPORT_JSON], REPORT_JSON);
  if (report.schemaVersion !== 1) {
    throw new ArtifactValidationError('invalid-report', `${REPORT_JSON}: schemaVersion must be 1`, {
      file: REPORT_JSON,
      field: 'schemaVersion',
    });
  }
  if (typeof report.kind !== 'string' || !REPORT_KINDS.has(report.kind)) {
    throw new ArtifactValidationError(
      'invalid-report',
      `${REPORT_JSON}: unknown kind ${String(report.kind)}`,
      {
        file: REPORT_JSON,
        field: 'kind',
      },
    );
  }
  return { tensorCount: 0, parameterCount: 0, dtypes: [] };
}
