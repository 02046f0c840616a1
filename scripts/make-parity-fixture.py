#!/usr/bin/python3
"""
PyTorch parity fixture, in the spirit of llm.c's test_gpt2.c: a reference nanoGPT (the paper
fork's toggles: bias, per-block LayerNorm, RoPE, MQA, NSA sparse attention) written here in
PyTorch, run from random initial weights on a tiny batch; it writes, per config,

  test/fixtures/parity/<name>.weights.safetensors  the initial weights, in nanoGPT's layout
      (Linear weights [out, in]) under CEG Lab's parameter names, with our ModelConfig as
      metadata "config": what src/model/safetensors.ts loads
  test/fixtures/parity/<name>.expect.safetensors   idx, targets, logits, loss, grad.<param>
      (d mean-CE / d param, file layout) and step.<param> (the parameter after one AdamW step
      with gradient clipping, as nanoGPT's train.py does it), all F32; metadata "train": the
      optimiser settings

test/parity.test.ts loads them and checks CEG Lab's model and training step against them (no
torch needed to run the test). Regenerate (Debian: apt-get install python3-torch):

  /usr/bin/python3 scripts/make-parity-fixture.py

Reference semantics (independent of the TypeScript code):
  - nanoGPT GPT: x = wte[idx] (+ wpe[t]); per block x += attn(n1(x)); x += mlp(n2(x)) with
    n1/n2 = LayerNorm or identity (the paper's "no LayerNorm" baseline keeps ln_f); tied head.
  - attention: c_attn -> q (C), k, v (n_kv_head·hs each); K/V head j serves query heads
    j·g .. j·g+g-1 (repeat_interleave); RoPE GPT-NeoX half-split, base 10000.
  - NSA: fla-org/native-sparse-attention's NativeSparseAttention with rotary = identity,
    semantics of its ops/naive.py (naive_nsa_with_compression): see nsa() below.
  - GELU exact (erf); LayerNorm eps 1e-5; loss = mean cross-entropy.
  - AdamW (torch.optim.AdamW, eps 1e-8) with weight decay on 2-D parameters only,
    after torch.nn.utils.clip_grad_norm_.
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'parity')

TRAIN = {'lr': 1e-2, 'beta1': 0.9, 'beta2': 0.95, 'eps': 1e-8, 'weightDecay': 0.1, 'gradClip': 0.5}
B, T = 2, 16


def model_config(**over):
    cfg = {
        'vocabSize': 32, 'blockSize': T, 'nLayer': 2, 'nHead': 4, 'nEmbd': 16, 'nKvHead': 4, 'dropout': 0,
        'bias': False, 'norm': 'none', 'positions': 'learned', 'ropeBase': 10000, 'attnKernel': 'plain',
        'sparse': {'blockSize': 4, 'localBlocks': 1, 'selectedBlocks': 1},
        'mlp': 'gelu', 'mlpHidden': 64, 'moe': {'experts': 4, 'topK': 2, 'auxLossWeight': 0.01},
    }
    cfg.update(over)
    return cfg


NSA_TINY = {'heads': 4, 'kvHeads': 1, 'blockSize': 4, 'blockCounts': 2, 'windowSize': 0}
CONFIGS = {
    'baseline': model_config(),
    'baseline-bias': model_config(bias=True),
    'layernorm': model_config(norm='layernorm'),
    'rope': model_config(positions='rope'),
    'mqa': model_config(nKvHead=1),
    'nsa': model_config(attnKernel='nsa', nsa=NSA_TINY),
    'nsa-bias': model_config(attnKernel='nsa', nsa=NSA_TINY, bias=True),
}


def param_shapes(cfg):
    """Our parameter names with nanoGPT (file) shapes; True marks a Linear weight (decayed, [out, in])."""
    C, V, L = cfg['nEmbd'], cfg['vocabSize'], cfg['nLayer']
    hs = C // cfg['nHead']
    out = [('transformer.wte.weight', (V, C), 'emb')]
    if cfg['positions'] == 'learned':
        out.append(('transformer.wpe.weight', (cfg['blockSize'], C), 'emb'))

    def lin(name, nin, nout, bias):
        out.append((name + '.weight', (nout, nin), 'lin'))
        if bias:
            out.append((name + '.bias', (nout,), 'bias'))

    def ln(name):
        out.append((name + '.weight', (C,), 'gain'))
        if cfg['bias']:
            out.append((name + '.bias', (C,), 'bias'))

    for i in range(L):
        h = f'transformer.h.{i}'
        if cfg['norm'] == 'layernorm':
            ln(h + '.ln_1')
        if cfg['attnKernel'] == 'nsa':
            n = cfg['nsa']
            d = C // n['heads']
            lin(h + '.attn.q_proj', C, n['heads'] * d, cfg['bias'])
            lin(h + '.attn.k_proj', C, n['kvHeads'] * d, cfg['bias'])
            lin(h + '.attn.v_proj', C, n['kvHeads'] * d, cfg['bias'])
            lin(h + '.attn.g_proj', C, 3 * n['heads'], False)
            lin(h + '.attn.o_proj', n['heads'] * d, C, False)
        else:
            lin(h + '.attn.c_attn', C, C + 2 * cfg['nKvHead'] * hs, cfg['bias'])
            lin(h + '.attn.c_proj', C, C, cfg['bias'])
        if cfg['norm'] == 'layernorm':
            ln(h + '.ln_2')
        lin(h + '.mlp.c_fc', C, cfg['mlpHidden'], cfg['bias'])
        lin(h + '.mlp.c_proj', cfg['mlpHidden'], C, cfg['bias'])
    ln('transformer.ln_f')
    return out


def init_params(cfg, gen):
    """Random weights, larger than GPT-2's 0.02 so that every nonlinearity is exercised."""
    p = {}
    for name, shape, kind in param_shapes(cfg):
        if kind == 'gain':
            t = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif kind == 'bias':
            t = 0.05 * torch.randn(shape, generator=gen)
        else:
            t = 0.3 * torch.randn(shape, generator=gen)
        p[name] = t.requires_grad_(True)
    return p


def rope(x, base):
    """x [B, H, T, hs]: GPT-NeoX half-split rotation."""
    _, _, Tn, hs = x.shape
    half = hs // 2
    inv = base ** (-torch.arange(0, half, dtype=torch.float64) * 2 / hs)
    ang = torch.arange(Tn, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1).float()
    sin = torch.cat([ang.sin(), ang.sin()], -1).float()
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def causal_attention(cfg, p, pre, x):
    Bn, Tn, C = x.shape
    H, Hkv = cfg['nHead'], cfg['nKvHead']
    hs = C // H
    qkv = F.linear(x, p[pre + '.c_attn.weight'], p.get(pre + '.c_attn.bias'))
    q, k, v = qkv.split([C, Hkv * hs, Hkv * hs], dim=2)
    q = q.view(Bn, Tn, H, hs).transpose(1, 2)
    k = k.view(Bn, Tn, Hkv, hs).transpose(1, 2)
    v = v.view(Bn, Tn, Hkv, hs).transpose(1, 2)
    if cfg['positions'] == 'rope':
        q, k = rope(q, cfg['ropeBase']), rope(k, cfg['ropeBase'])
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
    att = att.masked_fill(torch.ones(Tn, Tn, dtype=torch.bool).triu(1), float('-inf')).softmax(-1)
    y = (att @ v).transpose(1, 2).reshape(Bn, Tn, C)
    return F.linear(y, p[pre + '.c_proj.weight'], p.get(pre + '.c_proj.bias'))


def nsa(q, k, v, g_cmp, g_slc, g_swa, BS, counts, window):
    """
    NSA per fla-org/native-sparse-attention ops/naive.py. q [B, T, HQ, D], k, v [B, T, H, D],
    gates [B, T, HQ]. Compression: mean-pooled blocks, visible once complete (block c at t iff
    (t - BS + 1) // BS >= c); rows with no complete block give 0. Selection: group-summed
    compressed probabilities, own block = 1 per head, top-k (torch.topk), blocks after the
    query's own dropped; token attention over j <= t in the selected blocks.
    """
    Bn, Tn, HQ, D = q.shape
    H = k.shape[2]
    G = HQ // H
    scale = D ** -0.5
    C = Tn // BS
    S = min(counts, C)
    k_cmp = k.view(Bn, C, BS, H, D).mean(2).repeat_interleave(G, dim=2)  # [B, C, HQ, D]
    v_cmp = v.view(Bn, C, BS, H, D).mean(2).repeat_interleave(G, dim=2)
    t = torch.arange(Tn)
    c = torch.arange(C)
    incomplete = torch.div(t - BS + 1, BS, rounding_mode='floor')[:, None] < c[None, :]  # [T, C]
    empty = incomplete.all(-1, keepdim=True)
    own = (torch.div(t, BS, rounding_mode='floor')[:, None] == c[None, :])
    s = torch.einsum('bqhd,bkhd->bhqk', q * scale, k_cmp)
    s = s.masked_fill(incomplete & ~empty, float('-inf'))
    p = s.softmax(-1).masked_fill(empty, 0.0)  # [B, HQ, T, C]
    o_cmp = torch.einsum('bhqk,bkhd->bqhd', p, v_cmp) * g_cmp.unsqueeze(-1)
    imp = p.detach().masked_fill(own, 1.0).view(Bn, H, G, Tn, C).sum(2)  # [B, H, T, C]
    idx = imp.topk(S, -1)[1]  # [B, H, T, S]
    idx = idx.masked_fill(idx > torch.div(t, BS, rounding_mode='floor')[:, None], -1)
    # token mask [B, H, T, T]: j in a selected block and j <= t
    blk = torch.div(t, BS, rounding_mode='floor')  # block of key j
    sel = (idx.unsqueeze(-1) == blk.view(1, 1, 1, 1, Tn)).any(-2)  # [B, H, T, T]
    allowed = sel & (t[None, :] <= t[:, None])
    allowed = allowed.repeat_interleave(G, dim=1)  # [B, HQ, T, T]
    kk = k.repeat_interleave(G, dim=2)
    vv = v.repeat_interleave(G, dim=2)
    a = torch.einsum('bqhd,bkhd->bhqk', q * scale, kk)
    o_slc = torch.einsum('bhqk,bkhd->bqhd', a.masked_fill(~allowed, float('-inf')).softmax(-1), vv) * g_slc.unsqueeze(-1)
    o = o_slc + o_cmp
    if window > 0:
        band = (t[None, :] <= t[:, None]) & (t[None, :] > t[:, None] - window)
        o = o + torch.einsum('bhqk,bkhd->bqhd', a.masked_fill(~band, float('-inf')).softmax(-1), vv) * g_swa.unsqueeze(-1)
    return o


def nsa_attention(cfg, p, pre, x):
    Bn, Tn, C = x.shape
    n = cfg['nsa']
    D = C // n['heads']
    q = F.linear(x, p[pre + '.q_proj.weight'], p.get(pre + '.q_proj.bias')).view(Bn, Tn, n['heads'], D)
    k = F.linear(x, p[pre + '.k_proj.weight'], p.get(pre + '.k_proj.bias')).view(Bn, Tn, n['kvHeads'], D)
    v = F.linear(x, p[pre + '.v_proj.weight'], p.get(pre + '.v_proj.bias')).view(Bn, Tn, n['kvHeads'], D)
    g = F.linear(x, p[pre + '.g_proj.weight']).view(Bn, Tn, n['heads'], 3).sigmoid()
    g_cmp, g_slc, g_swa = g.unbind(-1)
    o = nsa(q, k, v, g_cmp, g_slc, g_swa, n['blockSize'], n['blockCounts'], n['windowSize'])
    return F.linear(o.reshape(Bn, Tn, n['heads'] * D), p[pre + '.o_proj.weight'])


def forward(cfg, p, idx):
    C = cfg['nEmbd']
    x = F.embedding(idx, p['transformer.wte.weight'])
    if cfg['positions'] == 'learned':
        x = x + p['transformer.wpe.weight'][: idx.shape[1]]

    def norm(name, h):
        if cfg['norm'] == 'none':
            return h
        return F.layer_norm(h, (C,), p[name + '.weight'], p.get(name + '.bias'), 1e-5)

    for i in range(cfg['nLayer']):
        h = f'transformer.h.{i}'
        att = nsa_attention if cfg['attnKernel'] == 'nsa' else causal_attention
        x = x + att(cfg, p, h + '.attn', norm(h + '.ln_1', x))
        m = F.gelu(F.linear(norm(h + '.ln_2', x), p[h + '.mlp.c_fc.weight'], p.get(h + '.mlp.c_fc.bias')))
        x = x + F.linear(m, p[h + '.mlp.c_proj.weight'], p.get(h + '.mlp.c_proj.bias'))
    x = F.layer_norm(x, (C,), p['transformer.ln_f.weight'], p.get('transformer.ln_f.bias'), 1e-5)
    return x @ p['transformer.wte.weight'].t()


def write_safetensors(path, tensors, metadata):
    header = {'__metadata__': metadata}
    blobs, off = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: 'F32', torch.int32: 'I32'}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, cfg) in enumerate(CONFIGS.items()):
        gen = torch.Generator().manual_seed(1000 + i)
        p = init_params(cfg, gen)
        idx = torch.randint(0, cfg['vocabSize'], (B, T), generator=gen)
        targets = torch.randint(0, cfg['vocabSize'], (B, T), generator=gen)
        write_safetensors(os.path.join(OUT, f'{name}.weights.safetensors'), {k: v for k, v in p.items()},
                          {'format': 'pt', 'config': json.dumps(cfg)})
        logits = forward(cfg, p, idx)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        loss.backward()
        grads = {k: v.grad.detach().clone() for k, v in p.items()}
        norm = torch.nn.utils.clip_grad_norm_(list(p.values()), TRAIN['gradClip'])
        decay = [v for k, v in p.items() if v.dim() >= 2]
        no_decay = [v for k, v in p.items() if v.dim() < 2]
        opt = torch.optim.AdamW([{'params': decay, 'weight_decay': TRAIN['weightDecay']}, {'params': no_decay, 'weight_decay': 0.0}],
                                lr=TRAIN['lr'], betas=(TRAIN['beta1'], TRAIN['beta2']), eps=TRAIN['eps'])
        opt.step()
        out = {'idx': idx.to(torch.int32), 'targets': targets.to(torch.int32), 'logits': logits, 'loss': loss.reshape(1)}
        out.update({f'grad.{k}': g for k, g in grads.items()})
        out.update({f'step.{k}': v for k, v in p.items()})
        write_safetensors(os.path.join(OUT, f'{name}.expect.safetensors'), out,
                          {'train': json.dumps(TRAIN), 'torch': torch.__version__, 'gradNorm': f'{norm.item():.6g}'})
        print(f'{name}: loss {loss.item():.6f}, grad norm {norm.item():.4f} (clipped to {TRAIN["gradClip"]})')


if __name__ == '__main__':
    main()
