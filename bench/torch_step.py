"""PyTorch reference for `npm run bench`: the same nanoGPT-style training step as
the project model src/model/gpt.ts at the bench config (study baseline: no per-block LayerNorm, final LayerNorm, learned
positions, masked-softmax attention, exact GELU MLP, biases, tied head, cross-entropy,
grad clip 1.0, AdamW), timed as the median of N steps after warm-up. Prints one JSON line.

Usage: /usr/bin/python3 bench/torch_step.py --config '{"vocabSize":128,...}' --threads 1 --steps 10 --warmup 3
       /usr/bin/python3 bench/torch_step.py --config '...' --threads 1 --warmup 3 --serve
--serve: the interleaved bench's worker protocol (bench/worker.ts): after the warm-up print
`READY {json}`, then per stdin line `run N` run N steps and print `BLOCK {"ms":[...],"cpuMs":[...],"loss":x}`
(cpuMs: this process's CPU time per step, all threads);
`quit` exits.
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.attn = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.fc = nn.Linear(C, 4 * C)
        self.fc2 = nn.Linear(4 * C, C)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))  # [B, H, T, hs]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = F.softmax(att.masked_fill(mask[:T, :T] == 0, float('-inf')), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc(x)))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c['nEmbd']
        self.wte = nn.Embedding(c['vocabSize'], C)
        self.wpe = nn.Embedding(c['blockSize'], C)
        self.blocks = nn.ModuleList([Block(C, c['nHead']) for _ in range(c['nLayer'])])
        self.lnf = nn.LayerNorm(C)
        self.register_buffer('mask', torch.tril(torch.ones(c['blockSize'], c['blockSize'])))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.mask)
        logits = self.lnf(x) @ self.wte.weight.t()  # tied head
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', required=True)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--serve', action='store_true')
    a = ap.parse_args()
    c = json.loads(a.config)
    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    model = GPT(c)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': other, 'weight_decay': 0.0}],
                            lr=1e-3, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(1235)
    data = torch.randint(0, c['vocabSize'], (c['batchSize'] * c['blockSize'] + 1,), generator=g)
    idx = data[:-1].view(c['batchSize'], c['blockSize'])
    targets = data[1:].view(c['batchSize'], c['blockSize'])

    def step():
        loss = model(idx, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    if a.serve:
        warm = []
        for _ in range(a.warmup):
            t0 = time.perf_counter()
            step()
            warm.append((time.perf_counter() - t0) * 1000)
        blas = 'openblas' if 'openblas' in open('/proc/self/maps').read() else 'other BLAS'
        print('READY ' + json.dumps({'engine': f'torch {torch.__version__}', 'kernels': blas, 'warmupMs': warm}), flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == 'quit':
                break
            if cmd[0] != 'run':
                continue
            ms, cpu, loss = [], [], float('nan')
            for _ in range(int(cmd[1])):
                c0 = time.process_time()
                t0 = time.perf_counter()
                loss = step()
                ms.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            print('BLOCK ' + json.dumps({'ms': ms, 'cpuMs': cpu, 'loss': loss}), flush=True)
        return

    losses = [step() for _ in range(a.warmup)]
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        losses.append(step())
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        'engine': 'torch', 'torchVersion': torch.__version__, 'threads': torch.get_num_threads(),
        'msAll': ms, 'msPerStep': sorted(ms)[len(ms) // 2],
        'firstLoss': losses[0], 'lastLoss': losses[-1],
    }))


if __name__ == '__main__':
    main()
