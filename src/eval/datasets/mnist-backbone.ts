// Where the MNIST study's pre-trained ViT backbone lives: a fixture made by scripts/fixtures/pretrain-mnist-vit.ts.
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of the backbone's model folder (config.json, model.safetensors, pretrain.log), resolved from the
 * repository root so it does not depend on the working directory.
 */
export const MNIST_BACKBONE_DIR = fileURLToPath(
  new URL('../../../test/fixtures/backbones/mnist-vit/', import.meta.url),
).replace(/\/$/, '');
