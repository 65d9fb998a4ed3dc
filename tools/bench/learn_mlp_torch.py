"""PyTorch (CPU or CUDA) counterpart of examples/learn/bench/mlp.tl: the two-moons perceptron
2 -> H -> 2 (tanh), full batch, cross-entropy through log_softmax, Adam(lr=0.05); prints the
mean wall time per epoch (forward + backward + step) after one warm-up epoch.

    /work/venv-ref/bin/python tools/bench/learn_mlp_torch.py [--points N] [--hidden H] [--epochs E] [--threads T] [--device cuda]
"""
import argparse
import math
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--points", type=int, default=200)
p.add_argument("--hidden", type=int, default=16)
p.add_argument("--epochs", type=int, default=300)
p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
p.add_argument("--device", default="cpu", help="cpu or cuda (the loss is read back every epoch, as tl does)")
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
torch.manual_seed(3)
n = a.points // 2
t = torch.rand(n) * math.pi
X = torch.cat([torch.stack([t.cos(), t.sin()], 1), torch.stack([1 - t.cos(), 0.5 - t.sin()], 1)]) + 0.1 * torch.randn(2 * n, 2)
labels = torch.cat([torch.zeros(n), torch.ones(n)])
Y = torch.stack([1 - labels, labels], 1)
X, Y = X.to(a.device), Y.to(a.device)
W1 = (0.5 * torch.randn(2, a.hidden)).to(a.device).requires_grad_()
b1 = torch.zeros(a.hidden, device=a.device, requires_grad=True)
W2 = (0.5 * torch.randn(a.hidden, 2)).to(a.device).requires_grad_()
b2 = torch.zeros(2, device=a.device, requires_grad=True)
opt = torch.optim.Adam([W1, b1, W2, b2], lr=0.05)


def epoch():
    opt.zero_grad()
    logits = torch.tanh(X @ W1 + b1) @ W2 + b2
    loss = -(Y * torch.log_softmax(logits, 1)).sum(1).mean()
    loss.backward()
    opt.step()
    return loss.item()


epoch()
start = time.perf_counter()
for _ in range(a.epochs - 1):
    loss = epoch()
per = (time.perf_counter() - start) / (a.epochs - 1)
print(f"torch {torch.__version__} {a.device} threads {torch.get_num_threads()}: points {2 * n}  hidden {a.hidden}  "
      f"epochs {a.epochs}: {per * 1e6:.1f} us/epoch  (final loss {loss:.4f})")
