"""PyTorch reference for bench/train/run.ts: samples/s of the same fine-tuning step on the same model and data.

The step matches lorafuse's: forward, cross-entropy, backward, global-norm clipping (1.0), AdamW (wd 0.01 on
matrices), warm-up + cosine learning rate; LoRA/L-LoRA on query,value (q_proj, v_proj in transformers 5) (r 8, alpha 16) with the classifier trained.
L-LoRA here is PEFT LoRA with lora_A frozen (B0 = 0: the linearized layer is exactly s*B*A0*x). Prints one JSON line: wall-clock samples/s per mode, and under "cpu" samples per CPU-second (all threads).
"""
import argparse
import json
import resource
import math
import time

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import ViTForImageClassification

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--dataset", required=True)
parser.add_argument("--steps", type=int, default=30)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
data = load_file(args.dataset)
pixels, labels = data["pixel_values"], data["labels"]


def build(mode):
    model = ViTForImageClassification.from_pretrained(args.model)
    if mode == "full":
        return model
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                                  modules_to_save=["classifier"]))
    if mode == "llora":
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.requires_grad_(False)
    return peft_model


def samples_per_second(mode, steps):
    torch.manual_seed(0)
    model = build(mode)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    lr = 1e-3 if mode != "full" else 1e-4
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(1, (s - warm) / max(1, steps - warm)))))
    n = pixels.shape[0]
    order = torch.randperm(n)

    def step(i):
        idx = order[(i * args.batch_size) % (n - args.batch_size):][: args.batch_size]
        out = model(pixel_values=pixels[idx], labels=labels[idx])
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()

    for i in range(3):
        step(i)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(steps):
        step(i)
    samples = steps * args.batch_size
    return samples / (time.perf_counter() - start), samples / (time.process_time() - cpu_start)


result = {"cpu": {}}
for mode in ["lora", "llora", "full"]:
    result[mode], result["cpu"][mode] = samples_per_second(mode, args.steps)
result["threads"] = torch.get_num_threads()
# Peak resident set of this process in MiB (Linux reports ru_maxrss in KiB).
result["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
