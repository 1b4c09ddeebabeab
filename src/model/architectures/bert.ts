// BertForSequenceClassification's forward pass on tfjs, with transformers' weight names and numerics.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from '../forward-context.ts';
import { activation, embeddingLookup, layerNorm, multiHeadAttention } from '../nn/functional.ts';
import { type Architecture, numberField, range, stringField } from './architecture.ts';

/** BertForSequenceClassification: post-LN encoder, tanh pooler over [CLS], attention mask honoured. */
export const bertArchitecture: Architecture = {
  modelType: 'bert',
  inputKind: 'tokens',
  linearModules(config) {
    const modules = ['bert.pooler.dense', 'classifier'];
    for (const i of range(numberField(config, 'num_hidden_layers'))) {
      const p = `bert.encoder.layer.${i}`;
      modules.push(
        `${p}.attention.self.query`,
        `${p}.attention.self.key`,
        `${p}.attention.self.value`,
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
    if (!inputs.inputIds) throw new ModelInputError('bert needs input_ids');
    const eps = numberField(config, 'layer_norm_eps', 1e-12);
    const heads = numberField(config, 'num_attention_heads');
    const act = stringField(config, 'hidden_act', 'gelu');
    const [batch, length] = inputs.inputIds.shape;
    const hidden = numberField(config, 'hidden_size');
    const words = embeddingLookup(
      ctx.weight('bert.embeddings.word_embeddings.weight') as tf.Tensor2D,
      tf.reshape(inputs.inputIds, [-1]) as tf.Tensor1D,
    );
    const positions = tf.slice(
      ctx.weight('bert.embeddings.position_embeddings.weight'),
      [0, 0],
      [length, hidden],
    );
    // token_type_ids default to zeros, as in BertEmbeddings.
    const tokenTypeTable = ctx.weight('bert.embeddings.token_type_embeddings.weight') as tf.Tensor2D;
    const tokenType = inputs.tokenTypeIds
      ? tf.reshape(embeddingLookup(tokenTypeTable, tf.reshape(inputs.tokenTypeIds, [-1]) as tf.Tensor1D), [
          batch,
          length,
          hidden,
        ])
      : tf.slice(tokenTypeTable, [0, 0], [1, hidden]);
    let x: tf.Tensor = tf.add(tf.add(tf.reshape(words, [batch, length, hidden]), positions), tokenType);
    x = layerNorm(
      x,
      ctx.weight('bert.embeddings.LayerNorm.weight'),
      ctx.weight('bert.embeddings.LayerNorm.bias'),
      eps,
    );
    const mask = inputs.attentionMask
      ? tf.reshape(tf.mul(tf.sub(1, tf.cast(inputs.attentionMask, 'float32')), -1e9), [batch, 1, 1, length])
      : undefined;
    for (const i of range(numberField(config, 'num_hidden_layers'))) {
      const p = `bert.encoder.layer.${i}`;
      const q = ctx.linear(`${p}.attention.self.query`, x);
      const k = ctx.linear(`${p}.attention.self.key`, x);
      const v = ctx.linear(`${p}.attention.self.value`, x);
      const attended = ctx.linear(`${p}.attention.output.dense`, multiHeadAttention(q, k, v, heads, mask));
      x = layerNorm(
        tf.add(attended, x),
        ctx.weight(`${p}.attention.output.LayerNorm.weight`),
        ctx.weight(`${p}.attention.output.LayerNorm.bias`),
        eps,
      );
      const inner = activation(act, ctx.linear(`${p}.intermediate.dense`, x));
      x = layerNorm(
        tf.add(ctx.linear(`${p}.output.dense`, inner), x),
        ctx.weight(`${p}.output.LayerNorm.weight`),
        ctx.weight(`${p}.output.LayerNorm.bias`),
        eps,
      );
    }
    const cls = tf.reshape(tf.slice(x, [0, 0, 0], [batch, 1, hidden]), [batch, hidden]);
    const pooled = tf.tanh(ctx.linear('bert.pooler.dense', cls));
    return { logits: ctx.linear('classifier', pooled) as tf.Tensor2D };
  },
};
