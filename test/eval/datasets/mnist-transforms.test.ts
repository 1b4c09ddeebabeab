// The suite's image transforms against small cases computed by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  elasticField,
  flipHorizontal,
  type GrayImage,
  gaussianBlur,
  gaussianKernel,
  invert,
  permutePatches,
  remapBilinear,
  rotateBilinear,
  rotateQuarterTurns,
  sampleBilinear,
  shift,
} from '../../../src/eval/datasets/mnist-transforms.ts';
import { seededUniform } from '../../../src/model/random.ts';

const image = (width: number, height: number, values: number[]): GrayImage => ({
  width,
  height,
  pixels: Float32Array.from(values),
});
/** Float32 storage and trigonometry round-off: 1e-6 is far below one grey level (1/255). */
const TOLERANCE = 1e-6;
function assertClose(actual: Float32Array, expected: number[], tolerance = TOLERANCE): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((value, i) => {
    assert.ok(Math.abs(value - expected[i]) <= tolerance, `pixel ${i}: ${value} vs ${expected[i]}`);
  });
}
const ramp3 = image(3, 3, [1, 2, 3, 4, 5, 6, 7, 8, 9]);

describe('mnist transforms', () => {
  it('bilinear sampling weighs the four neighbours and reads 0 outside', () => {
    const img = image(2, 2, [0, 1, 2, 3]);
    assert.equal(sampleBilinear(img, 0.5, 0.5), 1.5); // mean of the four
    assert.equal(sampleBilinear(img, 0.25, 0), 0.25);
    assert.equal(sampleBilinear(img, 1.5, 0), 0.5); // half of pixel (1,0) = 1, half outside
    assert.equal(sampleBilinear(img, -1, -1), 0);
  });

  it('rotates counter-clockwise: 90° moves the right column to the top row, exactly', () => {
    const expected = [3, 6, 9, 2, 5, 8, 1, 4, 7];
    assertClose(rotateBilinear(ramp3, 90).pixels, expected);
    assert.deepEqual([...rotateQuarterTurns(ramp3, 1).pixels], expected);
    assert.deepEqual([...rotateQuarterTurns(ramp3, 4).pixels], [...ramp3.pixels]);
    assertClose(rotateBilinear(ramp3, 180).pixels, [9, 8, 7, 6, 5, 4, 3, 2, 1]);
  });

  it('rotation by 45° interpolates: a centre impulse leaks (1 − √2/2)² into its edge neighbours', () => {
    const impulse = image(3, 3, [0, 0, 0, 0, 1, 0, 0, 0, 0]);
    const leak = (1 - Math.SQRT1_2) ** 2;
    // Edge neighbours read the source √2/2 px away on both axes; corners read (0, 1.41) away: no centre weight.
    assertClose(rotateBilinear(impulse, 45).pixels, [0, leak, 0, leak, 1, leak, 0, leak, 0]);
  });

  it('inverts, flips and shifts pixel by pixel', () => {
    assertClose(invert(image(3, 1, [0, 0.25, 1])).pixels, [1, 0.75, 0]);
    assert.deepEqual([...flipHorizontal(ramp3).pixels], [3, 2, 1, 6, 5, 4, 9, 8, 7]);
    // dx = 1 (right), dy = −1 (up): out(x, y) = src(x − 1, y + 1).
    assert.deepEqual([...shift(ramp3, 1, -1).pixels], [0, 4, 5, 0, 7, 8, 0, 0, 0]);
  });

  it('blurs with a normalised separable Gaussian: an impulse becomes the kernel outer product', () => {
    const e = Math.exp(-0.5);
    assertClose(gaussianKernel(1, 1), [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)]);
    const kernel = gaussianKernel(1); // radius 3
    const size = 9;
    const impulse = image(
      size,
      size,
      Array.from({ length: size * size }, (_, i) => (i === 40 ? 1 : 0)),
    );
    const blurred = gaussianBlur(impulse, 1);
    const expected = Array.from({ length: size * size }, (_, i) => {
      const [x, y] = [(i % size) - 4, Math.floor(i / size) - 4];
      return Math.abs(x) <= 3 && Math.abs(y) <= 3 ? kernel[x + 3] * kernel[y + 3] : 0;
    });
    assertClose(blurred.pixels, expected);
  });

  it('elastic fields are α × blurred uniform(−1, 1) noise, drawn from the seeded stream', () => {
    const options = { alpha: 3, sigma: 1 };
    const { dx, dy } = elasticField(5, 4, options, seededUniform(7));
    const random = seededUniform(7);
    const noise = () =>
      image(
        5,
        4,
        Array.from({ length: 20 }, () => 2 * random() - 1),
      );
    const [nx, ny] = [noise(), noise()];
    assertClose(
      dx,
      [...gaussianBlur(nx, 1).pixels].map((v) => 3 * v),
      1e-5,
    );
    assertClose(
      dy,
      [...gaussianBlur(ny, 1).pixels].map((v) => 3 * v),
      1e-5,
    );
    const again = elasticField(5, 4, options, seededUniform(7));
    assert.deepEqual(again.dx, dx);
    assert.ok(dx.some((v) => v !== 0));
    // α = 0 is the identity deformation.
    const still = elasticField(3, 3, { alpha: 0, sigma: 1 }, seededUniform(1));
    assert.deepEqual([...remapBilinear(ramp3, still.dx, still.dy).pixels], [...ramp3.pixels]);
  });

  it('remaps by a displacement field: a constant (+1, 0) reads the right neighbour', () => {
    const dx = new Float32Array(9).fill(1);
    const dy = new Float32Array(9);
    assert.deepEqual([...remapBilinear(ramp3, dx, dy).pixels], [2, 3, 0, 5, 6, 0, 8, 9, 0]);
  });

  it('permutes tiles: output tile t is source tile permutation[t]', () => {
    const img = image(
      4,
      4,
      Array.from({ length: 16 }, (_, i) => i),
    );
    // Tiles of 2 × 2: 0 = top-left, 1 = top-right, 2 = bottom-left, 3 = bottom-right.
    const out = permutePatches(img, 2, [3, 2, 1, 0]);
    assert.deepEqual([...out.pixels], [10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5]);
    assert.throws(() => permutePatches(img, 3, [0]), RangeError);
  });
});
