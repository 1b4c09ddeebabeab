// Validates a report artifact: report.json is a JSON object of a known schemaVersion; report.html, when present,
// is a non-empty HTML page. The report's content is the job's business; the store checks its form.
import { readFile } from 'node:fs/promises';
import { REPORT_HTML, REPORT_JSON } from './artifact-layout.ts';
import { ArtifactValidationError } from './errors.ts';
import { readJsonObject } from './read-json.ts';
import type { ArtifactSummary } from './types.ts';

export async function inspectReport(files: Record<string, string>): Promise<ArtifactSummary> {
  if (!files[REPORT_JSON]) {
    throw new ArtifactValidationError('missing-file', `a report needs ${REPORT_JSON}`, { file: REPORT_JSON });
  }
  const report = await readJsonObject(files[REPORT_JSON], REPORT_JSON);
  if (report.schemaVersion !== 1) {
    throw new ArtifactValidationError('invalid-report', `${REPORT_JSON}: schemaVersion must be 1`, {
      file: REPORT_JSON,
      field: 'schemaVersion',
    });
  }
  if (files[REPORT_HTML]) {
    const head = (await readFile(files[REPORT_HTML], 'utf8')).slice(0, 200).trimStart().toLowerCase();
    if (!head.startsWith('<!doctype html')) {
      throw new ArtifactValidationError('invalid-report', `${REPORT_HTML} is not an HTML document`, {
        file: REPORT_HTML,
      });
    }
  }
  return { tensorCount: 0, parameterCount: 0, dtypes: [] };
}
