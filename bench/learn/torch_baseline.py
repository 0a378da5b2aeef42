#!/usr/bin/env python3
"""PyTorch yardstick for the learner benchmark (bench_learn): the same 5-member ensemble
MLP (D inputs, L tanh layers of width H, 2P outputs: mean and log-variance), members as a
batched matmul (torch.baddbmm over [E, batch, features]), Gaussian NLL per entry
0.5 * (s + (y - mu)^2 * exp(-s)) with s clamped to [-12, 6], mean over observed (mask != 0)
entries per member, summed over members (each member's gradient is its own), Adam
(lr 1e-3, torch's default multi-tensor implementation), rows resident on the GPU, shuffled
each epoch, FP32 matrix products (no TF32, as the C learner's default). After one warm-up
epoch (compilation included) --epochs epochs are timed; the median is reported. Prints one
tab-separated row per measurement, like bench_learn:  impl hidden batch samples_per_s gemm_share
impl is torch-eager, torch-compile (torch.compile of the whole step, default mode) or
torch-compile-ro (mode="reduce-overhead": CUDA graphs of the compiled step)."""
import argparse
import math
import sys
import time

try:
    import torch
except ImportError:
    sys.stderr.write("torch_baseline.py: PyTorch is not installed here; no baseline measured "
                     "(it is on the GPU machine)\n")
    sys.exit(3)


class Ensemble(torch.nn.Module):
    def __init__(self, E, D, H, L, P):
        super().__init__()
        dims = [D] + [H] * L + [2 * P]
        self.W = torch.nn.ParameterList()
        self.b = torch.nn.ParameterList()
        for i in range(L + 1):
            fan_in, fan_out = dims[i], dims[i + 1]
            lim = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, like sl_model_new
            self.W.append(torch.nn.Parameter(torch.empty(E, fan_in, fan_out).uniform_(-lim, lim)))
            self.b.append(torch.nn.Parameter(torch.zeros(E, 1, fan_out)))
        self.E, self.P = E, P

    def forward(self, x):  # x [B, D] -> [E, B, 2P]
        h = x.unsqueeze(0).expand(self.E, -1, -1)
        last = len(self.W) - 1
        for i in range(last + 1):
            h = torch.baddbmm(self.b[i], h, self.W[i])
            if i < last:
                h = torch.tanh(h)
        return h


def nll(out, y, mask, P):
    mu, s = out[..., :P], out[..., P:]
    s = torch.clamp(s, -12.0, 6.0)  # zero gradient outside, as the C learner
    per = 0.5 * (s + (y - mu) ** 2 * torch.exp(-s))
    per = torch.where(mask, per, torch.zeros_like(per))  # masked targets may hold anything
    cnt = mask.sum().clamp(min=1)
    return per.sum(dim=(1, 2)).div(cnt).sum()  # sum over members of each member's mean


def bench(impl, E, D, H, L, P, batch, rows, epochs, dev):
    torch._dynamo.reset()
    torch.manual_seed(1)
    model = Ensemble(E, D, H, L, P).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(rows, D, device=dev) * 2 - 1
    y = torch.sin(2 * x).sum(1, keepdim=True) * torch.cos(0.2 * torch.arange(P, device=dev))
    mask = (torch.arange(rows, device=dev)[:, None] + torch.arange(P, device=dev)[None, :]) % 10 != 0

    def step(xb, yb, mb):
        opt.zero_grad(set_to_none=True)
        loss = nll(model(xb), yb, mb, P)
        loss.backward()
        opt.step()
        return loss

    if impl == "torch-compile":
        fn = torch.compile(step, dynamic=False)
    elif impl == "torch-compile-ro":
        fn = torch.compile(step, dynamic=False, mode="reduce-overhead")
    else:
        fn = step

    ro = impl == "torch-compile-ro"

    def epoch():
        perm = torch.randperm(rows, device=dev)
        loss = None
        for b0 in range(0, rows, batch):
            idx = perm[b0:b0 + batch]
            if ro:  # a new iteration: the graph's earlier outputs may be overwritten
                torch.compiler.cudagraph_mark_step_begin()
            loss = fn(x[idx], y[idx], mask[idx])
        v = float(loss)  # synchronises
        torch.cuda.synchronize()
        return v

    t0 = time.perf_counter()
    epoch()  # warm-up (and compilation)
    warm = time.perf_counter() - t0
    sps = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        loss = epoch()
        sps.append(rows / (time.perf_counter() - t0))
    sps.sort()
    print(f"# {impl} hidden {H} batch {batch}: warm-up {warm:.1f} s, last loss {loss / E:.6g} (mean member), "
          f"epochs {sps[0]:.0f}..{sps[-1]:.0f} samples/s", flush=True)
    return sps[len(sps) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", default="64,256,1024")
    ap.add_argument("--batch", default="256,4096")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--inputs", type=int, default=8)
    ap.add_argument("--outputs", type=int, default=16)
    ap.add_argument("--rows", type=int, default=65536)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--impl", default="torch-eager,torch-compile")
    a, _ = ap.parse_known_args()  # run.sh passes bench_learn options too
    if not torch.cuda.is_available():
        sys.stderr.write("torch_baseline.py: no CUDA device visible to PyTorch; no baseline measured\n")
        sys.exit(3)
    dev = torch.device("cuda")
    torch.set_float32_matmul_precision("highest")  # FP32 GEMMs, like the C learner's default
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    print("impl\thidden\tbatch\tsamples_per_s\tgemm_share")
    for H in [int(v) for v in a.hidden.split(",")]:
        for B in [int(v) for v in a.batch.split(",")]:
            for impl in a.impl.split(","):
                sps = bench(impl, a.members, a.inputs, H, a.layers, a.outputs, B, a.rows, a.epochs, dev)
                print(f"{impl}\t{H}\t{B}\t{sps:.0f}\t-", flush=True)


if __name__ == "__main__":
    main()
