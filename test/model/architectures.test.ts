import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { readSafetensors } from '../../src/model/io/host-tensors.ts';
import { bodyFeatures, predict } from '../../src/model/inference.ts';
import { loadModel } from '../../src/model/load-model.ts';
import { loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import { assertClose, FIXTURES, onBackend, OP_BACKENDS } from './helpers.ts';

// References come from transformers 5.18 / PEFT 0.21 in float32 (scripts/fixtures/make_model_fixtures.py). rtol 1e-4
// as asked; atol 5e-6 for logits near zero, where float32 rounding from a different summation order (tfjs vs torch
// matmul, erf/tanh) is absolute: measured worst |Δ| 2.1e-6 (ViT with LoRA) on wasm and cpu.
const RTOL = 1e-4;
const ATOL = 5e-6;

async function fixture(arch: string) {
  const dir = path.join(FIXTURES, arch);
  const inputs = (await readSafetensors(path.join(dir, 'inputs.safetensors'))).tensors;
  const reference = (await readSafetensors(path.join(dir, 'reference.safetensors'))).tensors;
  const head = arch === 'clip_vision_model' ? [path.join(dir, 'head.safetensors')] : [];
  const model = await loadModel(path.join(dir, 'model'), { extraWeights: head });
  return { dir, inputs, reference, model };
}

for (const backend of OP_BACKENDS) {
  describe(`architectures match transformers (${backend})`, () => {
    before(onBackend(backend));

    for (const arch of ['mlp', 'vit', 'bert', 'clip_vision_model']) {
      it(`${arch}: base logits`, async () => {
        const { inputs, reference, model } = await fixture(arch);
        const out = await predict(model, inputs);
        assertClose(
          out.logits!.data as Float32Array,
          reference.get('logits')!.data as Float32Array,
          RTOL,
          ATOL,
        );
        if (arch === 'clip_vision_model') {
          const expected = reference.get('image_embeds')!.data as Float32Array;
          assertClose(out.imageEmbeds!.data as Float32Array, expected, RTOL, ATOL);
        }
        model.dispose();
      });

      it(`${arch}: logits with the PEFT LoRA adapter`, async () => {
        const { dir, inputs, reference, model } = await fixture(arch);
        const adapter = await loadAdapter(path.join(dir, 'adapter'), model);
        assert.ok(adapter.modules.size > 0);
        const out = await predict(model, inputs, { adapter });
        const expected = reference.get('logits_lora')!.data as Float32Array;
        assertClose(out.logits!.data as Float32Array, expected, RTOL, ATOL);
        adapter.dispose();
        model.dispose();
      });
    }

    it('vit: an adapter saved under transformers 4.x names gives the same logits', async () => {
      const { dir, inputs, reference, model } = await fixture('vit');
      const adapter = await loadAdapter(path.join(dir, 'adapter_t4'), model);
      assert.equal(adapter.naming, 'transformers4');
      assert.equal(adapter.modules.get('vit.encoder.layer.0.intermediate.dense')?.rank, 2);
      assert.equal(adapter.modules.get('vit.encoder.layer.0.intermediate.dense')?.scale, 3); // alpha_pattern 6 / r 2
      const out = await predict(model, inputs, { adapter });
      assertClose(
        out.logits!.data as Float32Array,
        reference.get('logits_lora')!.data as Float32Array,
        RTOL,
        ATOL,
      );
      adapter.dispose();
      model.dispose();
    });

    // A probe head is fitted on bodyFeatures: the model's own head applied to them must give its logits.
    for (const arch of ['mlp', 'vit', 'bert', 'clip_vision_model']) {
      it(`${arch}: body features are what the head reads`, async () => {
        const { inputs, reference, model } = await fixture(arch);
        const features = await bodyFeatures(model, inputs);
        const weight = model.params.get('classifier.weight')!;
        const [width, classes] = weight.shape; // kept [in, out] on the backend
        assert.equal(width, model.architecture.headFeatures(model.config));
        const w = (await weight.data()) as Float32Array;
        const b = model.params.has('classifier.bias')
          ? ((await model.params.get('classifier.bias')!.data()) as Float32Array)
          : new Float32Array(classes);
        const count = features.length / width;
        const logits = new Float32Array(count * classes);
        for (let n = 0; n < count; n++)
          for (let c = 0; c < classes; c++) {
            let sum = b[c];
            for (let f = 0; f < width; f++) sum += features[n * width + f] * w[f * classes + c];
            logits[n * classes + c] = sum;
          }
        assertClose(logits, reference.get('logits')!.data as Float32Array, RTOL, ATOL);
        model.dispose();
      });
    }

    it('bert: the attention mask changes what padded rows see', async () => {
      const { inputs, model } = await fixture('bert');
      const unmasked = new Map(inputs);
      unmasked.delete('attention_mask');
      const withMask = await predict(model, inputs);
      const without = await predict(model, unmasked);
      const a = withMask.logits!.data as Float32Array;
      const b = without.logits!.data as Float32Array;
      const cols = withMask.logits!.shape[1];
      assertClose(a.subarray(0, cols), b.subarray(0, cols), 1e-6, 1e-6); // row 0 has no padding
      assert.ok(Math.abs(a[cols] - b[cols]) > 1e-3, 'padding leaked into row 1 or the mask was ignored');
      model.dispose();
    });
  });
}
