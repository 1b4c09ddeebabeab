// ViTForImageClassification's forward pass on tfjs, with transformers' weight names and numerics.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from '../forward-context.ts';
import { activation, layerNorm, multiHeadAttention, toPatches } from '../nn/functional.ts';
import { type Architecture, numberField, range, stringField } from './architecture.ts';

const PATCH = 'vit.embeddings.patch_embeddings.projection';

/** ViTForImageClassification (pre-LN encoder, CLS token, no pooler), checkpoint names as transformers writes them. */
export const vitArchitecture: Architecture = {
  modelType: 'vit',
  inputKind: 'pixels',
  linearModules(config) {
    const modules = [PATCH, 'classifier'];
    for (const i of range(numberField(config, 'num_hidden_layers'))) {
      const p = `vit.encoder.layer.${i}`;
      modules.push(
        `${p}.attention.attention.query`,
        `${p}.attention.attention.key`,
        `${p}.attention.attention.value`,
        `${p}.attention.output.dense`,
        `${p}.intermediate.dense`,
        `${p}.output.dense`,
      );
    }
    return modules;
  },
  headModules: () => ['classifier'],
  headFeatures: (config) => numberField(config, 'hidden_size'),
  forward(ctx: ForwardContext, inputs, config) {
    if (!inputs.pixelValues) throw new ModelInputError('vit needs pixel_values');
    const eps = numberField(config, 'layer_norm_eps', 1e-12);
    const heads = numberField(config, 'num_attention_heads');
    const act = stringField(config, 'hidden_act', 'gelu');
    const batch = inputs.pixelValues.shape[0];
    const patches = ctx.linear(PATCH, toPatches(inputs.pixelValues, numberField(config, 'patch_size')));
    const hidden = patches.shape[2] as number;
    const cls = tf.tile(ctx.weight('vit.embeddings.cls_token'), [batch, 1, 1]);
    const embedded = tf.add(tf.concat([cls, patches], 1), ctx.weight('vit.embeddings.position_embeddings'));
    const length = embedded.shape[1] as number;
    // The encoder runs on 2-D [B·T, hidden] rows: linears and layer norms need no reshapes.
    let x: tf.Tensor = tf.reshape(embedded, [batch * length, hidden]);
    for (const i of range(numberField(config, 'num_hidden_layers'))) {
      const p = `vit.encoder.layer.${i}`;
      const h = layerNorm(
        x,
        ctx.weight(`${p}.layernorm_before.weight`),
        ctx.weight(`${p}.layernorm_before.bias`),
        eps,
      );
      const q = ctx.linear(`${p}.attention.attention.query`, h);
      const k = ctx.linear(`${p}.attention.attention.key`, h);
      const v = ctx.linear(`${p}.attention.attention.value`, h);
      x = tf.add(
        x,
        ctx.linear(`${p}.attention.output.dense`, multiHeadAttention(q, k, v, heads, undefined, length)),
      );
      const h2 = layerNorm(
        x,
        ctx.weight(`${p}.layernorm_after.weight`),
        ctx.weight(`${p}.layernorm_after.bias`),
        eps,
      );
      x = tf.add(
        x,
        ctx.linear(`${p}.output.dense`, activation(act, ctx.linear(`${p}.intermediate.dense`, h2))),
      );
    }
    // Layer norm is per row, so normalising only the CLS rows gives the same logits.
    const clsRows = tf.reshape(
      tf.slice(tf.reshape(x, [batch, length, hidden]), [0, 0, 0], [batch, 1, hidden]),
      [batch, hidden],
    );
    const clsOut = layerNorm(
      clsRows,
      ctx.weight('vit.layernorm.weight'),
      ctx.weight('vit.layernorm.bias'),
      eps,
    );
    return { logits: ctx.linear('classifier', clsOut) as tf.Tensor2D };
  },
};
