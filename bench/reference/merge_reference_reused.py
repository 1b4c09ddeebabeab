#!/usr/bin/env python3
"""Reference for `npm run bench:merge`: a well-written PyTorch merge whose working buffers are reused.

The same per-tensor merge as merge_reference.py (mergekit's generalized task arithmetic: task_arithmetic,
ties, dare_ties, with mergekit's defaults), but written the way a performance-minded PyTorch user would:
every working buffer (the float32 inputs, task vectors, masks, the accumulator, the encoded output) is
allocated once, sized by the largest tensor, and every tensor after that is computed into views of
them with out=/in-place ops; float32 compute on 2 threads. Inputs are memory-mapped and each tensor
is cast straight from the page cache into its float32 buffer (no temporary copy). TIES's top-k cutoff
is torch.kthvalue of |delta| (entries equal to the cutoff are all kept); DARE draws torch.rand into a
reused buffer. Output is streamed to one file whose header is written first.

Usage: merge_reference_reused.py --method ties --base DIR --model DIR ... --weight 0.4 --density 0.2
       --out DIR [--seed 0] [--out-dtype bfloat16] [--threads 2]
"""

import argparse
import json
import mmap
import os
import struct
import sys
import time

import torch

from merge_reference import StreamedWriter

TORCH_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


class MappedCheckpoint:
    """model.safetensors (or shards) memory-mapped; tensors are zero-copy views of the mapping."""

    def __init__(self, folder):
        single = os.path.join(folder, "model.safetensors")
        if os.path.exists(single):
            files = [single]
        else:
            with open(os.path.join(folder, "model.safetensors.index.json")) as f:
                files = [os.path.join(folder, s) for s in dict.fromkeys(json.load(f)["weight_map"].values())]
        self.entries = {}
        self.names = []
        self.maps = []
        for path in files:
            with open(path, "rb") as f:
                # a private (copy-on-write) mapping, so torch.frombuffer gets a writable buffer; never written
                mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            self.maps.append(mapping)
            (length,) = struct.unpack("<Q", mapping[:8])
            header = json.loads(mapping[8 : 8 + length])
            header.pop("__metadata__", None)
            start = 8 + length
            for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
                begin, end = info["data_offsets"]
                self.entries[name] = (mapping, TORCH_DTYPES[info["dtype"]], info["shape"], start + begin, end - begin)
                self.names.append(name)

    def numel(self, name):
        numel = 1
        for dim in self.entries[name][2]:
            numel *= dim
        return numel

    def shape(self, name):
        return list(self.entries[name][2])

    def read_into(self, name, out):
        """Casts the stored tensor into `out` (a float32 view of numel elements)."""
        mapping, dtype, _, offset, nbytes = self.entries[name]
        if nbytes == 0:
            return out
        stored = torch.frombuffer(mapping, dtype=dtype, count=out.numel(), offset=offset)
        out.copy_(stored)
        return out


class Workspace:
    """Every buffer the merge needs, allocated once for the largest tensor; views per tensor."""

    def __init__(self, numel, models, out_dtype):
        f32 = torch.float32
        self.base = torch.empty(numel, dtype=f32)
        self.inputs = torch.empty((models, numel), dtype=f32)
        self.magnitude = torch.empty(numel, dtype=f32)
        self.keep = torch.empty(numel, dtype=torch.bool)
        self.keep_f = torch.empty(numel, dtype=f32)
        self.uniform = torch.empty(numel, dtype=f32)
        self.vote = torch.empty(numel, dtype=f32)
        self.majority = torch.empty(numel, dtype=torch.bool)
        self.agree = torch.empty(numel, dtype=torch.bool)
        self.agree_f = torch.empty(numel, dtype=f32)
        self.mixed = torch.empty(numel, dtype=f32)
        self.divisor = torch.empty(numel, dtype=f32)
        self.result = torch.empty(numel, dtype=f32)
        self.encoded = torch.empty(numel, dtype=out_dtype)


def trim_top_k(delta, density, ws, n):
    """TIES: zero all but the entries with |delta| >= the k-th largest |delta| (k = int(density*n))."""
    if density >= 1:
        return
    k = int(density * n)
    assert k > 0
    magnitude = torch.abs(delta, out=ws.magnitude[:n])
    cutoff = torch.kthvalue(magnitude, n - k + 1).values
    keep = torch.ge(magnitude, cutoff, out=ws.keep[:n])
    delta.mul_(keep)


def drop_and_rescale(delta, density, ws, n, generator):
    """DARE: keep each entry with probability density, rescaled to the original L1 norm."""
    if density >= 1:
        return
    before = torch.abs(delta, out=ws.magnitude[:n]).sum()
    uniform = ws.uniform[:n]
    uniform.uniform_(generator=generator)
    keep = torch.lt(uniform, density, out=ws.keep[:n])
    delta.mul_(keep)
    after = torch.abs(delta, out=ws.magnitude[:n]).sum()
    if before > 1e-7 and after > 1e-7:
        delta.mul_(before / after)


def merge_tensor(method, ws, n, count, weights, density, generator):
    base = ws.base[:n]
    deltas = [ws.inputs[m, :n] for m in range(count)]
    for m, delta in enumerate(deltas):
        delta.sub_(base)
        if method == "ties":
            trim_top_k(delta, density, ws, n)
        elif method == "dare_ties":
            drop_and_rescale(delta, density, ws, n, generator)
        delta.mul_(weights[m])
    mixed = ws.mixed[:n]
    mixed.copy_(deltas[0])
    for delta in deltas[1:]:
        mixed.add_(delta)
    if method != "task_arithmetic":
        # sign election on the summed weighted deltas (ties go to +), then the disjoint sum of the
        # weighted deltas that agree with it: sign(wd)·majority > 0
        majority = torch.ge(mixed, 0, out=ws.majority[:n])
        sign = ws.vote[:n]
        sign.copy_(majority).mul_(2).sub_(1)
        mixed.zero_()
        divisor = ws.divisor[:n]
        divisor.zero_()
        agree = ws.agree[:n]
        agree_f = ws.agree_f[:n]
        signed = ws.magnitude[:n]
        for m, delta in enumerate(deltas):
            torch.mul(delta, sign, out=signed)
            torch.gt(signed, 0, out=agree)
            agree_f.copy_(agree)
            mixed.addcmul_(delta, agree_f)
            if method == "ties":
                divisor.add_(agree_f, alpha=weights[m])
        if method == "ties":  # normalize: on by default for ties, off for dare_ties
            divisor.masked_fill_(torch.eq(divisor, 0, out=ws.keep[:n]), 1)
            mixed.div_(divisor)
    return torch.add(base, mixed, out=ws.result[:n])


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
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    out_dtype = getattr(torch, args.out_dtype)
    base = MappedCheckpoint(args.base)
    models = [MappedCheckpoint(folder) for folder in args.model]
    names = base.names
    largest = max(base.numel(name) for name in names)
    ws = Workspace(largest, len(models), out_dtype)
    os.makedirs(args.out, exist_ok=True)
    writer = StreamedWriter(os.path.join(args.out, "model.safetensors"), [(n, base.shape(n)) for n in names], out_dtype)
    generator = torch.Generator().manual_seed(args.seed)
    weights = [args.weight] * len(models)
    for name in names:
        n = base.numel(name)
        base.read_into(name, ws.base[:n])
        for m, model in enumerate(models):
            model.read_into(name, ws.inputs[m, :n])
        merged = merge_tensor(args.method, ws, n, len(models), weights, args.density, generator)
        encoded = ws.encoded[:n]
        encoded.copy_(merged)
        writer.write(name, encoded)
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
