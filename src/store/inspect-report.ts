// Validates a report's files: report.json must be a JSON object of a known schemaVersion with a kind,
// and report.html must be an HTML page beside it (rendered from the JSON by the job that wrote it).
// The report's content is the job's business; the store checks its form.
import { readFile } from 'node:fs/promises';
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
    throw new ArtifactValidationError('invalid-report', `${REPORT_JSON}: unknown schemaVersion`, {
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
  const head = (await readFile(files[REPORT_HTML], 'utf8')).slice(0, 200).trimStart().toLowerCase();
  if (!head.startsWith('<!doctype html')) {
    throw new ArtifactValidationError('invalid-report', `${REPORT_HTML} is not an HTML document`, {
      file: REPORT_HTML,
    });
  }
  return { tensorCount: 0, parameterCount: 0, dtypes: [] };
}
