#!/usr/bin/env python3
"""PyTorch SDPA on the same shapes as scripts/bench-webgpu.mjs and scripts/bench-webgpu-tc.mjs, for
side-by-side numbers: B=8, H=12, fp16, S=512..16384, head dims --dims (64), causal and not, per backend
via torch.nn.attention.sdpa_kernel. TF/s = 4*B*H*S*S*D / t (causal counts half). Timed with CUDA
events, median of several runs after a warm-up.
Usage: python3 scripts/bench-torch.py [SIZES] [--sizes 1024,...] [--dims 64,128] [--json FILE]"""
import json
import sys
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend


def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


B, H = 8, 12
positional = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and not sys.argv[i - 1].startswith("--")]
sizes = [int(x) for x in arg("--sizes", positional[0] if positional else "512,1024,2048,4096,8192,16384").split(",")]
dims = [int(x) for x in arg("--dims", "64").split(",")]
backends = {"FLASH": SDPBackend.FLASH_ATTENTION, "EFFICIENT": SDPBackend.EFFICIENT_ATTENTION, "CUDNN": SDPBackend.CUDNN_ATTENTION}
rows = []
print("torch", torch.__version__, torch.cuda.get_device_name())
print("| torch backend | D | S | causal | ms | TF/s |\n| --- | --- | --- | --- | --- | --- |")
for D, S in [(d, s) for d in dims for s in sizes]:
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
                tflops = flops / (ms / 1e3) / 1e12
                rows.append({"backend": name, "D": D, "S": S, "causal": causal, "ms": round(ms, 4), "tflops": round(tflops, 2)})
                print(f"| {name} | {D} | {S} | {causal} | {ms:.3f} | {tflops:.1f} |", flush=True)
            except Exception as e:  # a backend that cannot run the shape says why
                print(f"| {name} | {D} | {S} | {causal} | error: {str(e).splitlines()[0][:120]} | |", flush=True)
    del q, k, v
if "--json" in sys.argv:
    with open(arg("--json", ""), "w") as f:
        json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
