#!/usr/bin/env python3
"""Reference for `npm run bench:merge`: the same streamed, per-tensor merge as lorafuse, in PyTorch.

For each tensor of the base model, in file order: read the base and every fine-tuned model's tensor
(safetensors `safe_open`, one tensor at a time), upcast to float32, merge with mergekit's generalized
task arithmetic (task_arithmetic, ties, dare_ties), cast to the output dtype and append it to an output
file whose header was written first. Nothing but the tensors in hand is held in memory.

Sparsifiers follow mergekit/sparsify.py (ties: keep the int(density*numel) largest |delta| -- with
torch.topk, faster than mergekit's argsort; dare: Bernoulli(density) keep, rescaled to the original L1
norm), the consensus follows mergekit's get_mask ("sum" sign election on the weighted deltas) and the
defaults follow mergekit's registry (ties: normalize, dare_ties: rescale, no normalize).

Usage: merge_reference.py --method ties --base DIR --model DIR --model DIR ... --weight 0.4
       --density 0.2 --out DIR [--seed 0] [--out-dtype bfloat16]
"""

import argparse
import json
import os
import struct
import sys
import time

import torch
from safetensors import safe_open

DTYPE_NAMES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}


class Checkpoint:
    """A model folder: model.safetensors, or shards listed by model.safetensors.index.json."""

    def __init__(self, folder):
        single = os.path.join(folder, "model.safetensors")
        if os.path.exists(single):
            files = [single]
        else:
            with open(os.path.join(folder, "model.safetensors.index.json")) as f:
                weight_map = json.load(f)["weight_map"]
            files = [os.path.join(folder, name) for name in dict.fromkeys(weight_map.values())]
        self.handles = [safe_open(path, framework="pt") for path in files]
        self.owner = {}
        for handle in self.handles:
            for name in handle.keys():
                self.owner[name] = handle
        # file order (offset_keys, safetensors >= 0.6), as lorafuse iterates; keys() is sorted
        self.names = [n for h in self.handles for n in (h.offset_keys() if hasattr(h, "offset_keys") else h.keys())]

    def get(self, name):
        return self.owner[name].get_tensor(name)

    def shape(self, name):
        return list(self.owner[name].get_slice(name).get_shape())


class StreamedWriter:
    """Header first (padded to 8 bytes like the reference writer), then each tensor's bytes in order."""

    def __init__(self, path, specs, dtype):
        offsets = {}
        position = 0
        element = torch.empty((), dtype=dtype).element_size()
        header = {"__metadata__": {"format": "pt"}}
        for name, shape in specs:
            size = element
            for dim in shape:
                size *= dim
            header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": shape, "data_offsets": [position, position + size]}
            offsets[name] = size
            position += size
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        self.file = open(path, "wb")
        self.file.write(struct.pack("<Q", len(text)))
        self.file.write(text)
        self.order = [name for name, _ in specs]
        self.sizes = offsets
        self.next = 0

    def write(self, name, tensor):
        assert self.order[self.next] == name, (self.order[self.next], name)
        data = tensor.contiguous().view(torch.uint8).numpy()
        assert data.nbytes == self.sizes[name]
        self.file.write(memoryview(data))
        self.next += 1

    def close(self):
        assert self.next == len(self.order)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


def sparsify_magnitude(delta, density):
    if density >= 1:
        return delta
    k = int(density * delta.numel())
    assert k > 0
    flat = delta.abs().view(-1)
    keep = torch.topk(flat, k=k, largest=True, sorted=False).indices
    mask = torch.zeros_like(flat)
    mask[keep] = 1
    return delta * mask.view_as(delta)


def sparsify_bernoulli(delta, density, generator):
    if density >= 1:
        return delta
    mask = torch.bernoulli(torch.full_like(delta, density), generator=generator)
    kept = delta * mask
    before = delta.abs().sum()
    after = kept.abs().sum()
    if before > 1e-7 and after > 1e-7:
        kept *= before / after
    return kept


def merge_tensor(method, base, models, weights, density, generator):
    deltas = [model - base for model in models]
    if method == "ties":
        deltas = [sparsify_magnitude(d, density) for d in deltas]
    elif method == "dare_ties":
        deltas = [sparsify_bernoulli(d, density, generator) for d in deltas]
    weights_t = torch.tensor(weights, dtype=torch.float32).view([-1] + [1] * base.dim())
    weighted = torch.stack(deltas) * weights_t
    if method == "task_arithmetic":
        mixed = weighted.sum(dim=0)
    else:
        majority = (weighted.sum(dim=0) >= 0).to(weighted.dtype) * 2 - 1
        mask = weighted.sign() == majority
        mixed = (weighted * mask).sum(dim=0)
        if method == "ties":  # normalize: true by default for ties, false for dare_ties
            divisor = (weights_t * mask).sum(dim=0)
            divisor[divisor == 0] = 1
            mixed /= divisor
    return base + mixed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True, choices=["task_arithmetic", "ties", "dare_ties"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument("--density", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--out-dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args()

    started = time.perf_counter()
    out_dtype = getattr(torch, args.out_dtype)
    base = Checkpoint(args.base)
    models = [Checkpoint(folder) for folder in args.model]
    names = base.names
    os.makedirs(args.out, exist_ok=True)
    writer = StreamedWriter(os.path.join(args.out, "model.safetensors"), [(n, base.shape(n)) for n in names], out_dtype)
    generator = torch.Generator().manual_seed(args.seed)
    weights = [args.weight] * len(models)
    for name in names:
        base_t = base.get(name).to(torch.float32)
        inputs = [m.get(name).to(torch.float32) for m in models]
        merged = merge_tensor(args.method, base_t, inputs, weights, args.density, generator)
        writer.write(name, merged.to(out_dtype))
    writer.close()
    print(
        json.dumps(
            {
                "tensors": len(names),
                "seconds": time.perf_counter() - started,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
