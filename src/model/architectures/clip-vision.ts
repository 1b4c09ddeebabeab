// CLIPVisionModelWithProjection's forward pass on tfjs, plus the per-task linear head given as weights.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from '../forward-context.ts';
import { activation, layerNorm, multiHeadAttention, toPatches } from '../nn/functional.ts';
import { type Architecture, numberField, range, stringField } from './architecture.ts';

const PATCH = 'vision_model.embeddings.patch_embedding';

/**
 * CLIPVisionModelWithProjection (pre-LN, quick_gelu by default, pre_layrnorm, post_layernorm on [CLS], projection
 * without bias). A per-task head is an optional linear module `classifier` ([num_classes, projection_dim], e.g.
 * zero-shot text embeddings) applied to the L2-normalised image embedding: logits = classifier(ê).
 */
export const clipVisionArchitecture: Architecture = {
  modelType: 'clip_vision_model',
  inputKind: 'pixels',
  linearModules(config) {
    const modules = [PATCH, 'visual_projection', 'classifier'];
    for (const i of range(numberField(config, 'num_hidden_layers'))) {
      const p = `vision_model.encoder.layers.${i}`;
      modules.push(
        `${p}.self_attn.q_proj`,
        `${p}.self_attn.k_proj`,
        `${p}.self_attn.v_proj`,
        `${p}.self_attn.out_proj`,
        `${p}.mlp.fc1`,
        `${p}.mlp.fc2`,
      );
    }
    return modules;
  },
  headModules: () => ['classifier'],
  // The head reads the L2-normalised image embedding, after visual_projection.
  headFeatures: (config) => numberField(config, 'projection_dim'),
  forward(ctx: ForwardContext, inputs, config) {
    if (!inputs.pixelValues) throw new ModelInputError('clip_vision_model needs pixel_values');
    const eps = numberField(config, 'layer_norm_eps', 1e-5);
    const heads = numberField(config, 'num_attention_heads');
    const act = stringField(config, 'hidden_act', 'quick_gelu');
    const batch = inputs.pixelValues.shape[0];
    const patches = ctx.linear(PATCH, toPatches(inputs.pixelValues, numberField(config, 'patch_size')));
    const hidden = patches.shape[2] as number;
    const cls = tf.tile(tf.reshape(ctx.weight('vision_model.embeddings.class_embedding'), [1, 1, hidden]), [
      batch,
      1,
      1,
    ]);
    let x = tf.add(
      tf.concat([cls, patches], 1),
      ctx.weight('vision_model.embeddings.position_embedding.weight'),
    );
    const ln = (t: tf.Tensor, name: string) =>
      layerNorm(t, ctx.weight(`${name}.weight`), ctx.weight(`${name}.bias`), eps);
    x = ln(x, 'vision_model.pre_layrnorm');
    for (const i of range(numberField(config, 'num_hidden_layers'))) {
      const p = `vision_model.encoder.layers.${i}`;
      const h = ln(x, `${p}.layer_norm1`);
      const q = ctx.linear(`${p}.self_attn.q_proj`, h);
      const k = ctx.linear(`${p}.self_attn.k_proj`, h);
      const v = ctx.linear(`${p}.self_attn.v_proj`, h);
      x = tf.add(x, ctx.linear(`${p}.self_attn.out_proj`, multiHeadAttention(q, k, v, heads)));
      const h2 = ln(x, `${p}.layer_norm2`);
      x = tf.add(x, ctx.linear(`${p}.mlp.fc2`, activation(act, ctx.linear(`${p}.mlp.fc1`, h2))));
    }
    const pooled = ln(
      tf.reshape(tf.slice(x, [0, 0, 0], [batch, 1, hidden]), [batch, hidden]),
      'vision_model.post_layernorm',
    );
    const imageEmbeds = ctx.linear('visual_projection', pooled) as tf.Tensor2D;
    if (!ctx.hasWeight('classifier.weight')) return { imageEmbeds };
    const normalized = tf.div(imageEmbeds, tf.norm(imageEmbeds, 'euclidean', -1, true));
    return { imageEmbeds, logits: ctx.linear('classifier', normalized) as tf.Tensor2D };
  },
};
