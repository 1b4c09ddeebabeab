// STAND-IN (branch h9study) for h9suite's pre-trained backbone: the agreed path of the committed fixture. Here it
// holds a randomly initialised tiny ViT written by scripts/stand-in-mnist-backbone.ts; h9suite's file and fixture
// (a ViT pre-trained on a pretext task) replace both.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MNIST_BACKBONE_DIR: string = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../test/fixtures/backbones/mnist-vit',
);
