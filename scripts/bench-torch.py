#!/usr/bin/env python3
"""PyTorch SDPA on the same shapes as scripts/bench-webgpu.mjs, for side-by-side numbers:
B=8, H=12, D=64, fp16, S=512..16384, causal and not, per backend via torch.nn.attention.sdpa_kernel.
TF/s = 4*B*H*S*S*D / t (causal counts half). Timed with CUDA events, median of several runs."""
import sys
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

B, H, D = 8, 12, 64
sizes = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "512,1024,2048,4096,8192,16384").split(",")]
backends = {"FLASH": SDPBackend.FLASH_ATTENTION, "EFFICIENT": SDPBackend.EFFICIENT_ATTENTION, "CUDNN": SDPBackend.CUDNN_ATTENTION}
print("torch", torch.__version__, torch.cuda.get_device_name())
print("| torch backend | S | causal | ms | TF/s |\n| --- | --- | --- | --- | --- |")
for S in sizes:
    q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.float16) for _ in range(3))
    for causal in (False, True):
        for name, be in backends.items():
            try:
                with sdpa_kernel([be]):
                    for _ in range(3):
                        F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    torch.cuda.synchronize()
                    times = []
                    for _ in range(10):
                        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        a.record()
                        F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        b.record()
                        torch.cuda.synchronize()
                        times.append(a.elapsed_time(b))
                times.sort()
                ms = times[len(times) // 2]
                flops = 4 * B * H * S * S * D * (0.5 if causal else 1)
                print(f"| {name} | {S} | {causal} | {ms:.3f} | {flops / (ms / 1e3) / 1e12:.1f} |", flush=True)
            except Exception as e:  # a backend that cannot run the shape says why
                print(f"| {name} | {S} | {causal} | error: {str(e).splitlines()[0][:120]} | |", flush=True)
    del q, k, v
