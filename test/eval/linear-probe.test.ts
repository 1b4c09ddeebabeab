// The linear probe against cases with known answers: class priors (closed form) and separable clusters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitLinearProbe, probeAccuracy, probeAsHead, probePredictions } from '../../src/eval/linear-probe.ts';
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

  it("as a head on raw features gives the probe's own logits (standardisation folded in)", () => {
    const random = seededUniform(7);
    const dims = 4;
    const n = 50;
    // Features far from zero mean and unit scale, so that a fold that forgot either would show.
    const features = Float32Array.from(
      { length: n * dims },
      (_, k) => 10 + (k % dims) * 3 + random() * (1 + (k % dims)),
    );
    const labels = Array.from({ length: n }, (_, i) =>
      features[i * dims] + features[i * dims + 3] > 24 ? 1 : i % 3 === 0 ? 2 : 0,
    );
    const probe = fitLinearProbe({ features, labels }, { classes: 3, iterations: 50 });
    const head = probeAsHead(probe);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        let expected = probe.bias[c];
        let got = head.bias[c];
        for (let d = 0; d < dims; d++) {
          const x = features[i * dims + d];
          expected += probe.weights[c * dims + d] * (x - probe.mean[d]) * probe.scale[d];
          got += head.weight[c * dims + d] * x;
        }
        assert.ok(
          Math.abs(got - expected) < 1e-4 * (1 + Math.abs(expected)),
          `row ${i} class ${c}: ${got} vs ${expected}`,
        );
      }
    }
  });
});
