// The artifact record as the API returns it, for models and adapters alike.
import { Type } from 'typebox';
import { PageQuery } from '../../schemas.ts';

export const ArtifactFile = Type.Object({
  name: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
});

export const Lineage = Type.Object(
  {
    parents: Type.Array(Type.Object({ kind: Type.String(), id: Type.String() })),
    recipe: Type.Optional(Type.Object({}, { additionalProperties: true })),
    jobId: Type.Optional(Type.String()),
    lorafuseVersion: Type.String(),
    training: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: true,
          description:
            'Fine-tuned results: base, dataset, mode, hyperparameters, seed, steps and final metrics.',
        },
      ),
    ),
  },
  { description: 'Where a result came from; null for uploads.' },
);

export const Artifact = Type.Object(
  {
    id: Type.String({
      description:
        'mdl_... for models, adp_... for adapters, dst_... for datasets, hed_... for heads, rpt_... for reports.',
    }),
    kind: Type.Union([
      Type.Literal('model'),
      Type.Literal('adapter'),
      Type.Literal('dataset'),
      Type.Literal('head'),
      Type.Literal('report'),
    ]),
    project: Type.Optional(
      Type.String({ description: 'The project it belongs to (the key that uploaded or made it).' }),
    ),
    files: Type.Array(ArtifactFile),
    tensorCount: Type.Integer(),
    parameterCount: Type.Integer(),
    dtypes: Type.Array(Type.String()),
    createdAt: Type.String({ format: 'date-time' }),
    lineage: Type.Union([Lineage, Type.Null()]),
    digest: Type.Optional(
      Type.String({
        pattern: '^[0-9a-f]{64}$',
        description:
          'sha256 of the file manifest: one "<sha256>  <name>\\n" line per file, sorted by name (what sha256sum prints). GET ?digest= finds an artifact by it.',
      }),
    ),
    rank: Type.Optional(Type.Integer({ description: 'Adapters: the LoRA rank r.' })),
    targets: Type.Optional(Type.Array(Type.String(), { description: 'Adapters: the LoRA module names.' })),
    baseModel: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description: 'Adapters: the model id it was checked against.',
      }),
    ),
    config: Type.Optional(
      Type.Object({}, { additionalProperties: true, description: 'Adapters: adapter_config.json.' }),
    ),
    examples: Type.Optional(Type.Integer({ description: 'Datasets: the number of examples N.' })),
    split: Type.Optional(
      Type.Union([Type.Literal('train'), Type.Literal('validation'), Type.Literal('test')], {
        description: 'Datasets: the split.',
      }),
    ),
    task: Type.Optional(Type.String({ description: 'Datasets: the task name.' })),
    classes: Type.Optional(
      Type.Array(Type.String(), { description: 'Datasets: the class names; labels index them.' }),
    ),
    inputs: Type.Optional(
      Type.Array(
        Type.Object({ name: Type.String(), dtype: Type.String(), shape: Type.Array(Type.Integer()) }),
        { description: 'Datasets: the model inputs (Hugging Face names), with dtype and shape.' },
      ),
    ),
    head: Type.Optional(
      Type.Object(
        { classes: Type.Integer(), features: Type.Integer(), bias: Type.Boolean() },
        { description: 'Heads: weight [classes, features], and whether a bias is stored.' },
      ),
    ),
  },
  { $id: 'Artifact' },
);

export const ArtifactRef = Type.Ref('Artifact');

export const ArtifactPage = Type.Object({
  items: Type.Array(ArtifactRef),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const ArtifactListQuery = Type.Object(
  {
    ...PageQuery.properties,
    digest: Type.Optional(
      Type.String({
        pattern: '^[0-9a-f]{64}$',
        description:
          'Only the artifact with this content digest (see Artifact.digest): at most one item. Clients ask before uploading, to skip content the service already holds.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ArtifactParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

export const FileParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
});

/** For documentation only: multipart bodies are read by the route, not validated by a schema. */
export function multipartBody(description: string, parts: Record<string, string>) {
  return Type.Object(
    Object.fromEntries(
      Object.entries(parts).map(([name, text]) => [
        name,
        Type.Optional(Type.String({ format: 'binary', description: text })),
      ]),
    ),
    { description },
  );
}
