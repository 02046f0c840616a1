/**
 * What still differs from the paper's setup (Sanderson et al. 2025, its nanoGPT fork), in one
 * place: `ceg config` prints it and docs/paper-differences.md explains it. Plain data, beside
 * src/scales.ts (the configs it qualifies).
 */
import { PAPER_NSA } from './scales.js';

/** Differences that hold at every scale. */
const COMMON: readonly string[] = [
  'precision: the paper trained with bf16 autocast and TF32 matmuls on GPUs; we compute in float32 throughout',
  "randomness: initial weights, dropout masks and batch order come from our own seeded streams, not PyTorch's; runs are not bit-comparable (test/parity.test.ts shows the same math from the same weights)",
  'evaluation: the paper estimates validation loss from eval_iters random batches at every evaluation; we use one fixed set of evalBatches batches (the same every time)',
  'hardware: the paper ran DDP on 4 GPUs; we run one process per run with batchSize x gradAccum sequences per optimizer step (nanoGPT divides gradient_accumulation_steps by the number of GPUs, so this is its global batch)',
  `sparse attention (NSA): the paper used fla-org's Triton parallel_nsa kernel; we implement the semantics of its naive reference (ops/naive.py) densely under masks, with ties in the top-k going to the later block (Triton's bitonic sort leaves them unspecified); the NSA layer has no attention dropout in either, and whether the paper's fork applies residual dropout after it is not known to us (we do, as for every attention)`,
];

/** Differences of one scale from the paper's setup (our own scales say so first). */
export function paperDifferences(scale: string): string[] {
  const base = scale.replace(/-r\d+$/, '');
  if (base === 'compact' || base === 'full')
    return [
      "data: the paper trained on OpenWebText (GPT-2 BPE); this scale defaults to the bundled SOTU corpus (about 1.9 M GPT-2 tokens, repeated thousands of times at the paper's budget); pass --data DIR with nanoGPT-format train.bin/val.bin (nanoGPT's data/openwebtext/prepare.py) to train on OpenWebText",
      ...COMMON,
      `NSA selection at this context: ${PAPER_NSA.blockCounts} blocks of ${PAPER_NSA.blockSize} cover the whole context, so every eligible block is selected (as in the paper's runs); the compression branch and the gates still differ from the baseline`,
    ];
  return [
    `our own scale "${scale}", not one of the paper's configs: smaller model, context and budget; the bundled corpus`,
    "bias: true here (the paper: bias=False). At micro size the paper's own train.py with bias=False keeps the no-LayerNorm baseline on the unigram plateau for the whole run (PAPER.md); every stored micro run uses bias=True",
    "NSA: the paper's layout (16 query heads, 1 K/V head at micro; 4 heads at smoke) with blocks scaled to the context so selection is sparse (micro: 4 of 8 blocks of 16)",
    ...COMMON,
  ];
}
