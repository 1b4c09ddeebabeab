// The media types POST /v1/merges takes, the YAML recipe parser and the 415 that names them: a mergekit
// recipe is usually a YAML file, and the same file with artifact ids in place of paths is a valid body.
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ApiProblem } from '../../errors.ts';

/** What the route answers for, in the order a 415 lists them. */
export const RECIPE_MEDIA_TYPES = ['application/json', 'application/yaml'] as const;
/** application/yaml is the registered type (RFC 9512); the older names are still what many tools send. */
export const YAML_MEDIA_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'] as const;

const ACCEPTED = [RECIPE_MEDIA_TYPES[0], ...YAML_MEDIA_TYPES];

function essence(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

export function isRecipeMediaType(contentType: string | undefined): boolean {
  return (ACCEPTED as readonly string[]).includes(essence(contentType));
}

export function unsupportedRecipeType(contentType: string | undefined): ApiProblem {
  const sent = essence(contentType);
  return new ApiProblem(
    'unsupported-media-type',
    `${sent ? `Content-Type ${sent} is not accepted` : 'no Content-Type given'}: send the recipe as application/json or application/yaml`,
    { accepted: ACCEPTED },
  );
}

/**
 * One YAML document holding a mapping. Duplicate keys and more than one document are errors (a
 * recipe that means two things must not be guessed at); YAML 1.2's core schema keeps `yes`/`no` strings.
 */
export function parseYamlRecipe(text: string): unknown {
  try {
    return parseYaml(text, { uniqueKeys: true, maxAliasCount: 100, schema: 'core' });
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    throw new ApiProblem('invalid-request', `the YAML recipe does not parse: ${detail}`);
  }
}
