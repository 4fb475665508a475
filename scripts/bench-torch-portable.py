#!/usr/bin/env python3
"""PyTorch SDPA beside scripts/bench-webgpu-portable.mjs, same shapes, same lease: decode
(H=32, Hkv=8 with enable_gqa, D=128, S=1, L=32768, B=1 and 8, fp16: K/V TB/s per second of
kernel) and prefill (B=8, H=12, S=4096, D=64 and 128; fp16 for FLASH/EFFICIENT/cuDNN and fp32
for EFFICIENT, the WebGPU EFFICIENT's dtype). Timed with CUDA events, median after a warm-up.
Usage: python3 scripts/bench-torch-portable.py [--decode-l 32768] [--sizes 4096] [--json FILE]"""
import json
import sys
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend


def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


backends = {"FLASH": SDPBackend.FLASH_ATTENTION, "EFFICIENT": SDPBackend.EFFICIENT_ATTENTION, "CUDNN": SDPBackend.CUDNN_ATTENTION, "MATH": SDPBackend.MATH}
rows = []
print("torch", torch.__version__, torch.cuda.get_device_name())
L = int(arg("--decode-l", "32768"))
print("| torch backend | table | B | dtype | ms | K/V TB/s or TF/s |\n| --- | --- | --- | --- | --- | --- |")
for B in (1, 8):
    for dt in (torch.float16, torch.float32):
        q = torch.randn(B, 32, 1, 128, device="cuda", dtype=dt)
        k, v = (torch.randn(B, 8, L, 128, device="cuda", dtype=dt) for _ in range(2))
        kv = 2 * k.numel() * k.element_size()
        for name, be in backends.items():
            try:
                with sdpa_kernel([be]):
                    ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
                rows.append({"table": "decode", "backend": name, "B": B, "dtype": str(dt), "L": L, "ms": round(ms, 4), "tbs": round(kv / ms / 1e9, 3)})
                print(f"| {name} | decode L{L} | {B} | {dt} | {ms:.4f} | {kv / ms / 1e9:.2f} |", flush=True)
            except Exception as e:  # a backend that cannot run the shape says why
                print(f"| {name} | decode | {B} | {dt} | error: {str(e).splitlines()[0][:100]} | |", flush=True)
        del q, k, v
for S in [int(x) for x in arg("--sizes", "4096").split(",")]:
    for D in (64, 128):
        for dt in (torch.float16, torch.float32):
            q, k, v = (torch.randn(8, 12, S, D, device="cuda", dtype=dt) for _ in range(3))
            flops = 4 * 8 * 12 * S * S * D
            for name, be in backends.items():
                if name == "MATH":
                    continue
                try:
                    with sdpa_kernel([be]):
                        ms = timed(lambda: F.scaled_dot_product_attention(q, k, v), reps=10)
                    rows.append({"table": "prefill", "backend": name, "S": S, "D": D, "dtype": str(dt), "ms": round(ms, 4), "tflops": round(flops / ms / 1e9, 2)})
                    print(f"| {name} | prefill S{S} D{D} | 8 | {dt} | {ms:.3f} | {flops / ms / 1e9:.1f} |", flush=True)
                except Exception as e:
                    print(f"| {name} | prefill S{S} D{D} | 8 | {dt} | error: {str(e).splitlines()[0][:100]} | |", flush=True)
            del q, k, v
if "--json" in sys.argv:
    with open(arg("--json", ""), "w") as f:
        json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
