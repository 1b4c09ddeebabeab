// The code version recorded in every result's lineage (package.json's version).
import { readFileSync } from 'node:fs';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export const LORAFUSE_VERSION: string = packageJson.version;
