// Deterministic image transforms of the MNIST study suite: pure functions over one row-major grayscale image.
// Every transform reads `src` (width × height, values in [0, 1], background 0) and returns a new image of the same
// size; samples that fall outside the image read the background (0), as a digit's border is empty.

/** A grayscale image, row-major: pixel (x, y) is `pixels[y * width + x]`. */
export interface GrayImage {
  width: number;
  height: number;
  pixels: Float32Array;
}

function blank(image: GrayImage): GrayImage {
  return { width: image.width, height: image.height, pixels: new Float32Array(image.pixels.length) };
}

function pixelAt(image: GrayImage, x: number, y: number): number {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return 0;
  return image.pixels[y * image.width + x];
}

/** Bilinear interpolation at real coordinates (pixel centres at integers); outside the image reads 0. */
export function sampleBilinear(image: GrayImage, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  return (
    (1 - fx) * (1 - fy) * pixelAt(image, x0, y0) +
    fx * (1 - fy) * pixelAt(image, x0 + 1, y0) +
    (1 - fx) * fy * pixelAt(image, x0, y0 + 1) +
    fx * fy * pixelAt(image, x0 + 1, y0 + 1)
  );
}

/**
 * Backward mapping: out(x, y) = src(x + dx(x, y), y + dy(x, y)) by bilinear interpolation. Every geometric
 * transform here is one displacement field, so they share one sampler.
 */
export function remapBilinear(image: GrayImage, dx: Float32Array, dy: Float32Array): GrayImage {
  const out = blank(image);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const i = y * image.width + x;
      out.pixels[i] = sampleBilinear(image, x + dx[i], y + dy[i]);
    }
  }
  return out;
}

/**
 * Rotation by `degrees` counter-clockwise as seen on screen (y grows downwards) about the image centre, bilinear.
 * Each output pixel reads the source at the inversely rotated position.
 */
export function rotateBilinear(image: GrayImage, degrees: number): GrayImage {
  const theta = (degrees * Math.PI) / 180;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const cx = (image.width - 1) / 2;
  const cy = (image.height - 1) / 2;
  const n = image.pixels.length;
  const dx = new Float32Array(n);
  const dy = new Float32Array(n);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      // Screen counter-clockwise is clockwise in (x right, y down) coordinates; the inverse turns back.
      const u = x - cx;
      const v = y - cy;
      const sourceX = cx + cos * u - sin * v;
      const sourceY = cy + sin * u + cos * v;
      dx[y * image.width + x] = sourceX - x;
      dy[y * image.width + x] = sourceY - y;
    }
  }
  return remapBilinear(image, dx, dy);
}

/** 1 − value: white digits on black become black digits on white. */
export function invert(image: GrayImage): GrayImage {
  const out = blank(image);
  for (let i = 0; i < out.pixels.length; i++) out.pixels[i] = 1 - image.pixels[i];
  return out;
}

/** Mirror image left to right. */
export function flipHorizontal(image: GrayImage): GrayImage {
  const out = blank(image);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      out.pixels[y * image.width + x] = image.pixels[y * image.width + (image.width - 1 - x)];
    }
  }
  return out;
}

/** Translation by whole pixels: out(x, y) = src(x − dx, y − dy); what enters from the border is 0. */
export function shift(image: GrayImage, dx: number, dy: number): GrayImage {
  const out = blank(image);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) out.pixels[y * image.width + x] = pixelAt(image, x - dx, y - dy);
  }
  return out;
}

/** Normalised 1-D Gaussian weights exp(−k²/2σ²) for k = −radius..radius (radius = ⌈3σ⌉ by default). */
export function gaussianKernel(sigma: number, radius = Math.ceil(3 * sigma)): Float32Array {
  const weights = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) {
    const w = Math.exp(-(k * k) / (2 * sigma * sigma));
    weights[k + radius] = w;
    sum += w;
  }
  for (let i = 0; i < weights.length; i++) weights[i] /= sum;
  return weights;
}

/** Separable Gaussian blur (rows, then columns), zero outside the image. */
export function gaussianBlur(image: GrayImage, sigma: number): GrayImage {
  const kernel = gaussianKernel(sigma);
  const radius = (kernel.length - 1) / 2;
  const { width, height } = image;
  const rows = new Float32Array(image.pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) sum += kernel[k + radius] * pixelAt(image, x + k, y);
      rows[y * width + x] = sum;
    }
  }
  const horizontal: GrayImage = { width, height, pixels: rows };
  const out = blank(image);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) sum += kernel[k + radius] * pixelAt(horizontal, x, y + k);
      out.pixels[y * width + x] = sum;
    }
  }
  return out;
}

/**
 * The displacement field of an elastic deformation (Simard, Steinkraus & Platt 2003): uniform(−1, 1) noise per
 * pixel and axis, smoothed by a Gaussian of `sigma`, scaled by `alpha` pixels. `random` draws uniform [0, 1).
 */
export function elasticField(
  width: number,
  height: number,
  options: { alpha: number; sigma: number },
  random: () => number,
): { dx: Float32Array; dy: Float32Array } {
  const noise = () => {
    const pixels = new Float32Array(width * height);
    for (let i = 0; i < pixels.length; i++) pixels[i] = 2 * random() - 1;
    const smooth = gaussianBlur({ width, height, pixels }, options.sigma).pixels;
    for (let i = 0; i < smooth.length; i++) smooth[i] *= options.alpha;
    return smooth;
  };
  const dx = noise();
  const dy = noise();
  return { dx, dy };
}

/**
 * Tiles of `patch` × `patch` pixels moved as a whole: output tile t (row-major over the tile grid) is source tile
 * `permutation[t]`. The image sides must be multiples of `patch`.
 */
export function permutePatches(image: GrayImage, patch: number, permutation: readonly number[]): GrayImage {
  const across = image.width / patch;
  const down = image.height / patch;
  if (!Number.isInteger(across) || !Number.isInteger(down) || permutation.length !== across * down) {
    throw new RangeError(
      `permutePatches: a ${image.width}×${image.height} image in ${patch}-pixel tiles needs a permutation of ${across * down}`,
    );
  }
  const out = blank(image);
  for (let tile = 0; tile < permutation.length; tile++) {
    const source = permutation[tile];
    const [tx, ty] = [(tile % across) * patch, Math.floor(tile / across) * patch];
    const [sx, sy] = [(source % across) * patch, Math.floor(source / across) * patch];
    for (let y = 0; y < patch; y++) {
      for (let x = 0; x < patch; x++) {
        out.pixels[(ty + y) * image.width + tx + x] = image.pixels[(sy + y) * image.width + sx + x];
      }
    }
  }
  return out;
}

/** Exact rotation by quarter turns, counter-clockwise on screen (square images only); no interpolation. */
export function rotateQuarterTurns(image: GrayImage, turns: number): GrayImage {
  if (image.width !== image.height) throw new RangeError('rotateQuarterTurns needs a square image');
  const n = image.width;
  let current = image;
  for (let t = 0; t < ((turns % 4) + 4) % 4; t++) {
    const out = blank(current);
    // Screen counter-clockwise: the right column becomes the top row.
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) out.pixels[y * n + x] = current.pixels[x * n + (n - 1 - y)];
    }
    current = out;
  }
  return current === image ? { ...image, pixels: new Float32Array(image.pixels) } : current;
}
