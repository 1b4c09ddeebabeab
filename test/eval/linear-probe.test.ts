// The linear probe against cases with known answers: class priors (closed form) and separable clusters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitLinearProbe, probeAccuracy, probePredictions } from '../../src/eval/linear-probe.ts';
import { seededUniform } from '../../src/model/random.ts';

describe('linear probe', () => {
  it('with an uninformative feature learns the class prior: bias gap ln(0.7 / 0.3)', () => {
    const labels = Array.from({ length: 100 }, (_, i) => (i < 70 ? 0 : 1));
    const probe = fitLinearProbe({ features: new Float32Array(100).fill(3), labels }, { classes: 2 });
    // Cross-entropy's minimum puts softmax at the empirical frequencies; the bias carries no L2 penalty.
    assert.ok(Math.abs(probe.bias[0] - probe.bias[1] - Math.log(0.7 / 0.3)) < 1e-3, `${probe.bias}`);
    assert.deepEqual([...probePredictions(probe, Float32Array.from([3, -5]))], [0, 0]);
  });

  it('separates three clusters and generalises to new points of them', () => {
    const random = seededUniform(1);
    const centres = [
      [0, 0, 5],
      [5, 0, 0],
      [0, 5, 0],
    ];
    const draw = (n: number) => {
      const features = new Float32Array(n * 3);
      const labels = Array.from({ length: n }, (_, i) => i % 3);
      labels.forEach((label, i) => {
        for (let d = 0; d < 3; d++) features[i * 3 + d] = centres[label][d] + (random() - 0.5) * 2;
      });
      return { features, labels };
    };
    const probe = fitLinearProbe(draw(90), { classes: 3 });
    assert.equal(probeAccuracy(probe, draw(60)), 1);
    // Shuffled labels carry no signal: a fresh draw's accuracy stays near chance.
    const noise = draw(300);
    const shuffledLabels = noise.labels.map(() => Math.floor(random() * 3));
    const blind = fitLinearProbe({ features: noise.features, labels: shuffledLabels }, { classes: 3 });
    const fresh = draw(300);
    const accuracy = probeAccuracy(blind, {
      features: fresh.features,
      labels: fresh.labels.map(() => Math.floor(random() * 3)),
    });
    assert.ok(accuracy < 0.5, `accuracy ${accuracy}`);
  });
});
