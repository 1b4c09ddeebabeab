// The MNIST study suite: digit classification under seven input domains and two label tasks, built from the
// `mnist` package's real digits with train / validation / test splits drawn from fixed, disjoint pools.
import { deriveSeed, seededUniform, shuffled } from '../../model/random.ts';
import type { Dataset } from '../../model/train/dataset.ts';
import { type PoolName, sourceDigits, studyPools } from './mnist-pools.ts';
import {
  elasticField,
  flipHorizontal,
  type GrayImage,
  gaussianBlur,
  invert,
  permutePatches,
  remapBilinear,
  rotateBilinear,
  shift,
} from './mnist-transforms.ts';

export interface StudyTask {
  name: string;
  kind: 'domain' | 'label';
  description: string;
  classNames: string[];
}
export interface StudySplitSizes {
  train: number;
  validation: number;
  test: number;
}
type SplitName = keyof StudySplitSizes;
const SPLITS: readonly SplitName[] = ['train', 'validation', 'test'];

/** The suite's domains are fixed: these seeds belong to the task definitions, not to a study's seed. */
const ELASTIC_SEED = 0x0e1a5;
const PATCH_SEED = 0x9a7c;
/** Domain parameters, recorded here once and quoted by EXPERIMENTS.md. */
export const SUITE_PARAMETERS = {
  rotationDegrees: 60,
  shift: { dx: 4, dy: -4 },
  blurSigma: 1.5,
  elastic: { alpha: 34, sigma: 4 },
  patch: 7,
} as const;

const DIGIT_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** The fixed tile order of `patches`: a seeded shuffle of the 4 × 4 grid of 7-pixel tiles. */
export const PATCH_PERMUTATION: readonly number[] = shuffled(
  (28 / SUITE_PARAMETERS.patch) ** 2,
  seededUniform(PATCH_SEED),
);

interface TaskRecipe extends StudyTask {
  label: (digit: number) => number;
  transform: (image: GrayImage, sourceIndex: number) => GrayImage;
}

const identity = (image: GrayImage) => image;
const digitTask = (name: string, description: string, transform: TaskRecipe['transform']): TaskRecipe => ({
  name,
  kind: 'domain',
  description,
  classNames: [...DIGIT_NAMES],
  label: (digit) => digit,
  transform,
});

/** The per-image deformation of `elastic`: the same source image is always deformed the same way. */
function elasticDeform(image: GrayImage, sourceIndex: number): GrayImage {
  const random = seededUniform(deriveSeed(ELASTIC_SEED, String(sourceIndex)));
  const { dx, dy } = elasticField(image.width, image.height, SUITE_PARAMETERS.elastic, random);
  return remapBilinear(image, dx, dy);
}

const RECIPES: readonly TaskRecipe[] = [
  digitTask(
    'rotated',
    `digit, image rotated ${SUITE_PARAMETERS.rotationDegrees}° counter-clockwise (bilinear)`,
    (image) => rotateBilinear(image, SUITE_PARAMETERS.rotationDegrees),
  ),
  digitTask('inverted', 'digit, intensities inverted (1 − x: dark digit on white)', invert),
  digitTask('flipped', 'digit, image mirrored left to right', flipHorizontal),
  digitTask(
    'shifted',
    `digit, image shifted ${SUITE_PARAMETERS.shift.dx} px right and ${-SUITE_PARAMETERS.shift.dy} px up`,
    (image) => shift(image, SUITE_PARAMETERS.shift.dx, SUITE_PARAMETERS.shift.dy),
  ),
  digitTask('blurred', `digit, Gaussian blur σ = ${SUITE_PARAMETERS.blurSigma} px`, (image) =>
    gaussianBlur(image, SUITE_PARAMETERS.blurSigma),
  ),
  digitTask(
    'elastic',
    `digit, elastic deformation (α = ${SUITE_PARAMETERS.elastic.alpha}, σ = ${SUITE_PARAMETERS.elastic.sigma}), a fixed field per image`,
    elasticDeform,
  ),
  digitTask('patches', 'digit, the 16 tiles of 7 × 7 px in a fixed shuffled order', (image) =>
    permutePatches(image, SUITE_PARAMETERS.patch, PATCH_PERMUTATION),
  ),
  {
    name: 'parity',
    kind: 'label',
    description: 'even or odd digit, original images',
    classNames: ['even', 'odd'],
    label: (digit) => digit % 2,
    transform: identity,
  },
  {
    name: 'magnitude',
    kind: 'label',
    description: 'digit ≥ 5 or not, original images',
    classNames: ['0-4', '5-9'],
    label: (digit) => (digit >= 5 ? 1 : 0),
    transform: identity,
  },
];

/** The suite, in a stable order. */
export const STUDY_TASKS: readonly StudyTask[] = RECIPES.map(({ name, kind, description, classNames }) => ({
  name,
  kind,
  description,
  classNames,
}));
/** The four tasks of `lorafuse study --quick`: two input domains and two label tasks. */
export const QUICK_STUDY_TASKS: readonly string[] = ['rotated', 'flipped', 'parity', 'magnitude'];

/** A task name the suite does not have. */
export class UnknownStudyTaskError extends Error {
  readonly code = 'unknown_study_task';
  constructor(readonly task: string) {
    super(`unknown study task '${task}'; the suite has ${RECIPES.map((r) => r.name).join(', ')}`);
    this.name = 'UnknownStudyTaskError';
  }
}

/** A split larger than its pool allows with balanced classes. */
export class StudySplitSizeError extends Error {
  readonly code = 'study_split_too_large';
  constructor(
    readonly task: string,
    readonly split: SplitName,
    readonly requested: number,
    readonly limit: number,
  ) {
    super(
      `study task '${task}': ${split} split of ${requested} examples exceeds the limit of ${limit} (balanced classes from the ${split} pool)`,
    );
    this.name = 'StudySplitSizeError';
  }
}

function recipeFor(name: string): TaskRecipe {
  const recipe = RECIPES.find((r) => r.name === name);
  if (!recipe) throw new UnknownStudyTaskError(name);
  return recipe;
}

/** The digits that carry each class label of a task. */
function digitsByClass(recipe: TaskRecipe): number[][] {
  const classes: number[][] = recipe.classNames.map(() => []);
  for (let digit = 0; digit < 10; digit++) classes[recipe.label(digit)].push(digit);
  return classes;
}

/**
 * The largest balanced split: every class gets the same count, spread evenly over its digits, so a class is limited
 * by (its digits) × (its rarest digit's images in the pool).
 */
function balancedLimit(recipe: TaskRecipe, pool: number[][]): number {
  const classes = digitsByClass(recipe);
  const perClass = Math.min(
    ...classes.map((digits) => digits.length * Math.min(...digits.map((d) => pool[d].length))),
  );
  return perClass * classes.length;
}

/** The most examples each split of a task can have. */
export function studySplitLimits(name: string): StudySplitSizes {
  const recipe = recipeFor(name);
  const pools = studyPools();
  const [train, validation, test] = SPLITS.map((split) => balancedLimit(recipe, pools.get(split)!));
  return { train, validation, test };
}

/** n items over k slots as evenly as possible, the remainder to the first slots. */
function evenShares(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

function selectSplit(recipe: TaskRecipe, split: SplitName, size: number, seed: number): number[] {
  const pool = studyPools().get(split as PoolName)!;
  const limit = balancedLimit(recipe, pool);
  if (!Number.isSafeInteger(size) || size < 0 || size > limit) {
    throw new StudySplitSizeError(recipe.name, split, size, limit);
  }
  const chosen: number[] = [];
  const classes = digitsByClass(recipe);
  evenShares(size, classes.length).forEach((classCount, c) => {
    const digits = classes[c];
    evenShares(classCount, digits.length).forEach((digitCount, j) => {
      // Per (seed, split, digit), not per task: domain tasks of one seed see the same source images.
      const members = pool[digits[j]];
      const order = shuffled(members.length, seededUniform(deriveSeed(seed, `${split}-${digits[j]}`)));
      for (let i = 0; i < digitCount; i++) chosen.push(members[order[i]]);
    });
  });
  const mixed = shuffled(chosen.length, seededUniform(deriveSeed(seed, `${recipe.name}-${split}-order`)));
  return mixed.map((i) => chosen[i]);
}

/** The source image indices of each split (disjoint: they come from disjoint pools). */
export function selectStudySources(
  name: string,
  sizes: StudySplitSizes,
  seed = 0,
): Record<SplitName, number[]> {
  const recipe = recipeFor(name);
  const [train, validation, test] = SPLITS.map((split) => selectSplit(recipe, split, sizes[split], seed));
  return { train, validation, test };
}

/** One source image through a task's transform, as pixels in [0, 1]. */
export function studyTaskImage(name: string, sourceIndex: number): GrayImage {
  const { pixels } = sourceDigits();
  const image: GrayImage = {
    width: 28,
    height: 28,
    pixels: pixels.slice(sourceIndex * 784, (sourceIndex + 1) * 784),
  };
  return recipeFor(name).transform(image, sourceIndex);
}

/** Source images through a task's transform, scaled like ViTImageProcessor ((x − 0.5) / 0.5), as a dataset. */
export function buildStudyDataset(name: string, split: string, sources: readonly number[]): Dataset {
  const recipe = recipeFor(name);
  const { digits } = sourceDigits();
  const pixels = new Float32Array(sources.length * 784);
  const labels = new Int32Array(sources.length);
  sources.forEach((source, row) => {
    const image = studyTaskImage(name, source);
    for (let p = 0; p < 784; p++) pixels[row * 784 + p] = (image.pixels[p] - 0.5) / 0.5;
    labels[row] = recipe.label(digits[source]);
  });
  return {
    inputs: new Map([['pixel_values', { dtype: 'F32', shape: [sources.length, 1, 28, 28], data: pixels }]]),
    labels,
    task: name,
    split,
    classNames: [...recipe.classNames],
  };
}

/** A task's train, validation and test datasets: seeded, balanced by class, never sharing a source image. */
export function buildStudyTask(
  name: string,
  sizes: StudySplitSizes,
  seed = 0,
): { train: Dataset; validation: Dataset; test: Dataset } {
  const sources = selectStudySources(name, sizes, seed);
  return {
    train: buildStudyDataset(name, 'train', sources.train),
    validation: buildStudyDataset(name, 'validation', sources.validation),
    test: buildStudyDataset(name, 'test', sources.test),
  };
}
