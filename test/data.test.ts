import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHAR_VOCAB, GPT2_VOCAB } from '../src/scales.js';
import {
  DataError,
  DOCUMENT_SEPARATOR,
  batchFromOffsets,
  charTokenizer,
  corpusDocuments,
  createRng,
  evalBatchOffsets,
  fixedEvalBatches,
  getTokenizer,
  loadCorpus,
  loadTokens,
  normalizeText,
  prepareCorpus,
  readTokenFile,
  restoreRng,
  sampleBatch,
  writeTokenFile,
  type RngState,
} from '../src/data/index.js';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-data-'));

// ------------------------------------------------------------------ corpora

test('corpora are split by document: disjoint, complete, val text absent from train', () => {
  for (const [name, total, nVal] of [
    ['sotu', 233, 23],
    ['moby-dick', 139, 13],
  ] as const) {
    const docs = corpusDocuments(name);
    const trainIds = new Set(docs.train.map((d) => d.id));
    const valIds = docs.val.map((d) => d.id);
    assert.equal(docs.train.length + docs.val.length, total, name);
    assert.equal(trainIds.size, docs.train.length, `${name}: train ids unique`);
    assert.equal(docs.val.length, nVal, name);
    for (const id of valIds) assert.ok(!trainIds.has(id), `${name}: ${id} in both`);
    const c = loadCorpus(name);
    assert.deepEqual(c.documents, { train: docs.train.length, val: docs.val.length });
    assert.equal(c.train, docs.train.map((d) => d.text).join(DOCUMENT_SEPARATOR));
    assert.equal(c.val, docs.val.map((d) => d.text).join(DOCUMENT_SEPARATOR));
    for (const d of docs.val)
      assert.ok(!c.train.includes(d.text.slice(0, 2000)), `${name}: val ${d.id} text found in train`);
    assert.match(c.description, /val/);
  }
  // the documented rules, by hand
  const sotuVal = corpusDocuments('sotu').val.map((d) => d.id);
  assert.equal(sotuVal[0], '1799 John Adams'); // 10th address: 1790..1796 Washington (7), 1797, 1798, 1799 Adams
  const mobyVal = corpusDocuments('moby-dick').val.map((d) => d.id);
  assert.deepEqual(
    mobyVal,
    Array.from({ length: 13 }, (_, i) => `chapter ${10 * (i + 1)}`),
  );
});

test('unknown corpus is a clear error naming the valid ones', () => {
  assert.throws(() => loadCorpus('shakespeare' as never), /unknown corpus "shakespeare".*sotu, moby-dick/);
});

// ------------------------------------------------------------------ tokenizers

test('char tokenizer: fixed vocabulary of 97 padded to CHAR_VOCAB, ids by hand', () => {
  const t = getTokenizer('char');
  assert.equal(t.vocabSize, 97);
  assert.equal(t.paddedVocabSize, CHAR_VOCAB);
  assert.deepEqual(Array.from(t.encode('\n !Az~')), [0, 1, 2, 34, 91, 95]);
  let ascii = '\n';
  for (let c = 32; c <= 126; c++) ascii += String.fromCharCode(c);
  const ids = t.encode(ascii);
  assert.deepEqual(
    Array.from(ids),
    Array.from({ length: 96 }, (_, i) => i),
  ); // 0..95, in order
  assert.equal(t.decode(ids), ascii);
  // the same vocabulary whatever text it sees first: encoding is a pure function of the string
  assert.deepEqual(
    Array.from(t.encode('Call me Ishmael.')),
    Array.from(getTokenizer('char').encode('Call me Ishmael.')),
  );
});

test('char tokenizer: normalisation and unknown symbol', () => {
  const t = charTokenizer;
  assert.equal(normalizeText('“Héllo”—it’s… naïve\tŒuvre\r\n'), '"Hello"--it\'s... naive OEuvre\n');
  const ids = t.encode('a\u05D7b\u{1F600}c\u00B0'); // Hebrew letter, emoji (surrogate pair), degree sign
  assert.deepEqual(Array.from(ids), [66, 96, 67, 96, 68, 96]);
  assert.equal(t.decode(ids), 'a\uFFFDb\uFFFDc\uFFFD');
  const text = 'Fellow-Citizens of the Senate: "In vain" -- 4 1/2 per cent.\n\nNext.';
  assert.equal(t.decode(t.encode(text)), text);
  assert.throws(() => t.decode([97]), /id 97 at position 0 is outside the vocabulary 0..96/);
});

test('gpt2 tokenizer: known ids, round trip, special text stays ordinary', () => {
  const g = getTokenizer('gpt2');
  assert.equal(g.vocabSize, 50257);
  assert.equal(g.paddedVocabSize, GPT2_VOCAB);
  assert.deepEqual(Array.from(g.encode('Hello world')), [15496, 995]);
  const s = 'Mr. Speaker, the State of our Union — strong; naïve “quotes”, 1,872,563 tokens.\n\nEnd';
  const ids = g.encode(s);
  assert.ok(ids instanceof Uint16Array);
  assert.equal(g.decode(ids), s);
  const eot = g.encode('a<|endoftext|>b');
  assert.ok(!Array.from(eot).includes(50256));
  assert.equal(g.decode(eot), 'a<|endoftext|>b');
  assert.equal(g.decode([50256]), '<|endoftext|>');
  assert.throws(() => g.decode([50257]), /50257 at position 0 is outside/);
});

test('unknown tokenizer names the valid ones', () => {
  assert.throws(
    () => getTokenizer('bpe'),
    (e: Error) => e instanceof DataError && /unknown tokenizer "bpe"; valid: char, gpt2/.test(e.message),
  );
});

// ------------------------------------------------------------------ token files

test('token files: little-endian uint16 round trip, atomic, errors', () => {
  const dir = tmp();
  const f = path.join(dir, 'sub', 'train.bin');
  writeTokenFile(f, [1, 258, 0, 65535]);
  assert.deepEqual(Array.from(fs.readFileSync(f)), [1, 0, 2, 1, 0, 0, 255, 255]); // as numpy's uint16 tofile
  assert.deepEqual(Array.from(readTokenFile(f)), [1, 258, 0, 65535]);
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['train.bin']); // no temp file left
  const big = new Uint16Array(10001).map((_, i) => (i * 7919) % 65536);
  writeTokenFile(f, big);
  assert.deepEqual(readTokenFile(f), big);
  // a file numpy wrote is just bytes: a 3-byte file is not uint16s
  const odd = path.join(dir, 'odd.bin');
  fs.writeFileSync(odd, Buffer.from([1, 2, 3]));
  assert.throws(() => readTokenFile(odd), /odd\.bin has 3 bytes, not a whole number of uint16/);
  assert.throws(() => readTokenFile(path.join(dir, 'nope.bin')), /token file not found: .*nope\.bin/);
  assert.throws(() => writeTokenFile(path.join(dir, 'x.bin'), [1, 70000]), /token 70000 at position 1 does not fit/);
  fs.rmSync(dir, { recursive: true });
});

test('prepareCorpus tokenises once, then reuses the cache; stale meta rebuilds', () => {
  const cacheDir = tmp();
  const seen: string[] = [];
  const a = prepareCorpus({ corpus: 'moby-dick', tokenizer: 'char', cacheDir, onProgress: (m) => seen.push(m) });
  assert.equal(a.cached, false);
  assert.equal(a.dir, path.join(cacheDir, 'moby-dick-char'));
  const c = loadCorpus('moby-dick');
  assert.deepEqual(a.trainTokens, charTokenizer.encode(c.train));
  assert.deepEqual(a.valTokens, charTokenizer.encode(c.val));
  assert.equal(a.meta.tokens.train, a.trainTokens.length);
  assert.equal(a.meta.vocabSize, 97);
  assert.equal(a.meta.paddedVocabSize, 128);
  assert.match(a.meta.source, /^@stdlib\/datasets-moby-dick@\d+\.\d+\.\d+$/);
  assert.deepEqual(a.meta.documents, { train: 126, val: 13 });
  const trainBin = path.join(a.dir, 'train.bin');
  const mtime = fs.statSync(trainBin).mtimeMs;

  const b = prepareCorpus({ corpus: 'moby-dick', tokenizer: 'char', cacheDir });
  assert.equal(b.cached, true);
  assert.equal(fs.statSync(trainBin).mtimeMs, mtime); // not rewritten
  assert.equal(b.meta.created, a.meta.created);
  assert.deepEqual(b.trainTokens, a.trainTokens);
  assert.deepEqual(b.valTokens, a.valTokens);

  // a cache made by another tokenizer version is not trusted
  const metaFile = path.join(a.dir, 'meta.json');
  fs.writeFileSync(metaFile, JSON.stringify({ ...a.meta, tokenizerVersion: 'char-v0' }));
  const d = prepareCorpus({ corpus: 'moby-dick', tokenizer: 'char', cacheDir, onProgress: (m) => seen.push(m) });
  assert.equal(d.cached, false);
  assert.ok(
    seen.some((m) => /tokenizerVersion is "char-v0"/.test(m)),
    seen.join('\n'),
  );
  assert.deepEqual(d.valTokens, a.valTokens);
  // a truncated train.bin is not trusted either
  fs.writeFileSync(trainBin, Buffer.alloc(10));
  assert.equal(prepareCorpus({ corpus: 'moby-dick', tokenizer: 'char', cacheDir }).cached, false);

  // loadTokens on a bundled corpus goes through the same cache
  const lt = loadTokens({ corpus: 'moby-dick', tokenizer: 'char' }, { cacheDir });
  assert.deepEqual(lt.val, a.valTokens);
  assert.equal(lt.paddedVocabSize, 128);
  fs.rmSync(cacheDir, { recursive: true });
});

test("loadTokens with corpus 'tokens' reads a nanoGPT folder and checks ids", () => {
  const dir = tmp();
  writeTokenFile(path.join(dir, 'train.bin'), [15496, 995, 50256, 11]);
  writeTokenFile(path.join(dir, 'val.bin'), [15496, 995, 13]);
  const t = loadTokens({ corpus: 'tokens', tokenizer: 'gpt2', dir });
  assert.deepEqual(Array.from(t.train.subarray(0, t.train.length)), [15496, 995, 50256, 11]);
  assert.equal(t.vocabSize, 50257);
  assert.equal(t.paddedVocabSize, 50304);
  assert.equal(t.tokenizer.decode(t.val.subarray(0, t.val.length)), 'Hello world.');
  // gpt2 ids do not fit the char vocabulary
  assert.throws(
    () => loadTokens({ corpus: 'tokens', tokenizer: 'char', dir }),
    /train\.bin holds token id 50256, but tokenizer "char" has ids 0\.\.96 \(padded vocab 128\)/,
  );
  assert.throws(
    () => loadTokens({ corpus: 'tokens', tokenizer: 'gpt2' }),
    /data\.dir is required with corpus 'tokens'/,
  );
  fs.rmSync(path.join(dir, 'val.bin'));
  assert.throws(() => loadTokens({ corpus: 'tokens', tokenizer: 'gpt2', dir }), /token file not found: .*val\.bin/);
  fs.rmSync(dir, { recursive: true });
});

// ------------------------------------------------------------------ rng and batches

/** xoshiro128** written independently with BigInt, from the reference C code. */
function referenceXoshiro(state: [number, number, number, number], n: number): number[] {
  const M = 0xffffffffn;
  const s = state.map(BigInt);
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & M;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(Number((rotl((s[1] * 5n) & M, 7n) * 9n) & M));
    const t = (s[1] << 9n) & M;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
  }
  return out;
}

test('rng is xoshiro128**, deterministic per seed, and restores exactly', () => {
  const r = createRng(1234);
  const st = r.state();
  const got = Array.from({ length: 50 }, () => r.nextUint32());
  assert.deepEqual(got, referenceXoshiro(st.s, 50));
  assert.deepEqual(Array.from({ length: 5 }, createRng(1234).nextUint32), got.slice(0, 5));
  assert.notDeepEqual(Array.from({ length: 5 }, createRng(1235).nextUint32), got.slice(0, 5));
  assert.notDeepEqual(createRng(0).state().s, [0, 0, 0, 0]);
  assert.notDeepEqual(createRng(2 ** 32).state(), createRng(0).state()); // high bits count

  const a = createRng(7);
  for (let i = 0; i < 13; i++) a.nextInt(1000);
  const saved: RngState = JSON.parse(JSON.stringify(a.state()));
  const cont = Array.from({ length: 20 }, () => a.nextInt(1000));
  const b = restoreRng(saved);
  assert.deepEqual(
    Array.from({ length: 20 }, () => b.nextInt(1000)),
    cont,
  );
  assert.throws(() => restoreRng({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] }), /invalid rng state/);
  assert.throws(() => createRng(-1), /seed must be a non-negative safe integer, got -1/);

  const c = createRng(3);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[c.nextInt(3)]++;
  for (const k of counts) assert.ok(k > 850 && k < 1150, `counts ${counts}`);
  for (let i = 0; i < 100; i++) {
    const f = c.nextFloat();
    assert.ok(f >= 0 && f < 1);
  }
});

test('sampleBatch cuts nanoGPT windows: y is x shifted by one', () => {
  const tokens = Uint16Array.from({ length: 500 }, (_, i) => (i * 37) % 97);
  const B = 6;
  const T = 9;
  const rng = createRng(42);
  const probe = restoreRng(rng.state());
  const batch = sampleBatch(tokens, B, T, rng);
  assert.equal(batch.x.length, B * T);
  assert.ok(batch.x instanceof Int32Array && batch.y instanceof Int32Array);
  for (let b = 0; b < B; b++) {
    const o = probe.nextInt(500 - T); // the same draws, in [0, len - T - 1]
    for (let t = 0; t < T; t++) {
      assert.equal(batch.x[b * T + t], tokens[o + t]);
      assert.equal(batch.y[b * T + t], tokens[o + t + 1]);
    }
  }
  // the next batch continues the same stream
  assert.deepEqual(sampleBatch(tokens, B, T, rng), sampleBatch(tokens, B, T, restoreRng(probe.state())));
  // every offset 0..len-T-1 is reachable, and none beyond
  const short = Uint16Array.from([5, 6, 7, 8]);
  const seen = new Set<number>();
  const r2 = createRng(1);
  for (let i = 0; i < 200; i++) seen.add(sampleBatch(short, 1, 2, r2).x[0]);
  assert.deepEqual([...seen].sort(), [5, 6]);
  assert.throws(() => sampleBatch(short, 1, 4, createRng(1)), /has 4 tokens, fewer than blockSize \+ 1 = 5/);
  assert.throws(() => batchFromOffsets(tokens, [492], T), /offset 492 \(row 0\) is outside 0\.\.490/);
});

test('fixedEvalBatches: same batches every call, different per seed', () => {
  const val = Uint16Array.from({ length: 3000 }, (_, i) => (i * 13 + (i >> 3)) % 128);
  const a = fixedEvalBatches(val, 4, 3, 16, 99);
  const b = fixedEvalBatches(val, 4, 3, 16, 99);
  assert.equal(a.length, 4);
  assert.deepEqual(a, b);
  assert.notDeepEqual(fixedEvalBatches(val, 4, 3, 16, 100), a);
  const offs = evalBatchOffsets(val.length, 4, 3, 16, 99);
  assert.deepEqual(batchFromOffsets(val, offs[2], 16), a[2]);
  assert.notDeepEqual(a[0].x, a[1].x);
});

test('token files over 1 GiB are read window by window (FileTokens): same batches, same checks, no 2 GiB limit', async () => {
  const { FileTokens, openTokenFile } = await import('../src/data/tokenfiles.js');
  const dir = tmp();
  const ids = Uint16Array.from({ length: 5000 }, (_, i) => (i * 7919) % 50257);
  writeTokenFile(path.join(dir, 'train.bin'), ids);
  writeTokenFile(path.join(dir, 'val.bin'), ids.slice(0, 700));
  const whole = loadTokens({ corpus: 'tokens', tokenizer: 'gpt2', dir });
  const windows = loadTokens({ corpus: 'tokens', tokenizer: 'gpt2', dir }, { inMemoryBytes: 0 });
  assert.ok(windows.train instanceof FileTokens && !(whole.train instanceof FileTokens));
  assert.equal(windows.train.length, 5000);
  assert.deepEqual(windows.train.subarray(4990, 5000), ids.subarray(4990, 5000));
  assert.deepEqual(windows.train.subarray(4995, 6000), ids.subarray(4995, 5000)); // clipped like Uint16Array.subarray
  // the same rng stream gives the same batches from either
  const a = createRng(5),
    b = createRng(5);
  for (let k = 0; k < 3; k++)
    assert.deepEqual(sampleBatch(windows.train, 4, 64, a), sampleBatch(whole.train, 4, 64, b));
  assert.deepEqual(fixedEvalBatches(windows.val, 3, 2, 16, 9), fixedEvalBatches(whole.val, 3, 2, 16, 9));
  // the id check reads every window
  writeTokenFile(path.join(dir, 'val.bin'), [...ids.slice(0, 699), 60000]);
  assert.throws(
    () => loadTokens({ corpus: 'tokens', tokenizer: 'gpt2', dir }, { inMemoryBytes: 0 }),
    /val\.bin holds token id 60000/,
  );
  // a file over 2 GiB (sparse: no disk used) opens as FileTokens where readFileSync would refuse it
  const big = path.join(dir, 'big.bin');
  fs.closeSync(fs.openSync(big, 'w'));
  fs.truncateSync(big, 2 ** 31 + 2 * 8);
  const fd = fs.openSync(big, 'r+');
  fs.writeSync(fd, Buffer.from(Uint16Array.from([1, 2, 3, 4]).buffer), 0, 8, 2 ** 31 + 8);
  fs.closeSync(fd);
  const seq = openTokenFile(big);
  assert.ok(seq instanceof FileTokens);
  assert.equal(seq.length, 2 ** 30 + 8);
  assert.deepEqual(Array.from(seq.subarray(2 ** 30 + 3, 2 ** 30 + 8)), [0, 1, 2, 3, 4]);
  (seq as InstanceType<typeof FileTokens>).close();
  for (const s of [windows.train, windows.val]) (s as InstanceType<typeof FileTokens>).close();
  fs.rmSync(dir, { recursive: true });
});
