/**
 * The multi-run progress board (src/train/progress-lines.ts) against a fake TTY: its output is
 * replayed by a small terminal emulator written here (\r, \n, cursor up, erase line, erase
 * below), and the screen is what a user would see.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgressBoard, progressOverIpc, boardFeed, type ProgressEvent } from '../src/train/progress-lines.js';

/** A fake terminal: applies what the board writes to a screen of lines. */
class FakeTty {
  isTTY = true;
  screen: string[] = [''];
  row = 0;
  col = 0;
  raw = '';
  constructor(readonly columns = 80) {}
  write(s: string): boolean {
    this.raw += s;
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c === '\x1b') {
        const m = /^\x1b\[(\d*)([A-Za-z])/.exec(s.slice(i));
        assert.ok(m, `unknown escape at ${JSON.stringify(s.slice(i, i + 8))}`);
        const n = m[1] === '' ? 1 : Number(m[1]);
        if (m[2] === 'A') this.row = Math.max(0, this.row - n);
        else if (m[2] === 'K') this.screen[this.row] = (this.screen[this.row] ?? '').slice(0, this.col);
        else if (m[2] === 'J') {
          this.screen[this.row] = (this.screen[this.row] ?? '').slice(0, this.col);
          this.screen.length = this.row + 1;
        } else assert.fail(`unexpected escape ${m[0]}`);
        i += m[0].length - 1;
      } else if (c === '\r') this.col = 0;
      else if (c === '\n') {
        this.row += 1;
        this.col = 0;
        if (this.screen.length <= this.row) this.screen.push('');
      } else {
        const line = (this.screen[this.row] ?? '').padEnd(this.col);
        this.screen[this.row] = line.slice(0, this.col) + c + line.slice(this.col + 1);
        this.col += 1;
        // a real terminal wraps here: a board line must never reach the last column
        assert.ok(
          this.col < (this.columns || 80),
          `line reached column ${this.columns || 80}: ${this.screen[this.row]}`,
        );
      }
    }
    return true;
  }
  /** the visible lines, without the empty line under the cursor */
  lines(): string[] {
    return this.screen.filter((l, i) => !(i === this.screen.length - 1 && l === ''));
  }
}

test('on a TTY: one line per active run, redrawn in place; a finished run leaves its final line above the block', () => {
  let t = 0;
  const tty = new FakeTty(80);
  const board = createProgressBoard({ stream: tty, now: () => t, minIntervalMs: 0 });
  const a = board.add('[1/14] baseline smoke seed 1', 100);
  const b = board.add('[2/14] layernorm smoke seed 1', 100);
  t = 10_000;
  a.update(50, { loss: 2.5, tokPerSec: 1234 });
  b.update(25, { loss: 2.75 });
  assert.deepEqual(tty.lines(), [
    '[1/14] baseline smoke seed 1 50% step 50/100 loss 2.500 1.2k tok/s ETA 10s',
    '[2/14] layernorm smoke seed 1 25% step 25/100 loss 2.750 ETA 30s',
  ]);
  board.log('[ceg] a message');
  t = 20_000;
  a.update(100, { loss: 2.0, valLoss: 2.1 });
  a.done('final val loss 2.1000');
  const c = board.add('[3/14] rope smoke seed 1', 100);
  t = 25_000;
  c.update(10, {});
  b.update(50, {});
  assert.deepEqual(tty.lines(), [
    '[ceg] a message',
    '[1/14] baseline smoke seed 1 done: step 100/100 in 20s; final val loss 2.1000',
    '[2/14] layernorm smoke seed 1 50% step 50/100 loss 2.750 ETA 25s',
    '[3/14] rope smoke seed 1 10% step 10/100 ETA 45s',
  ]);
  assert.equal(board.active(), 2);
  b.done();
  c.done();
  assert.equal(board.active(), 0);
  assert.deepEqual(
    tty
      .lines()
      .slice(2)
      .map((l) => l.replace(/ in \d+s.*/, '')),
    ['[2/14] layernorm smoke seed 1 done: step 50/100', '[3/14] rope smoke seed 1 done: step 10/100'],
  );
});

test('a line fits 80 columns (or a narrower terminal) and keeps its ETA: fields go first, then the label is shortened', () => {
  for (const cols of [80, 50, 40]) {
    let t = 0;
    const tty = new FakeTty(cols);
    const board = createProgressBoard({ stream: tty, now: () => t, minIntervalMs: 0 });
    const a = board.add(`[12/140] modern_postnorm study-n270k seed 3 lr 0.00316 fork@1234->5678`, 5678);
    t = 60_000;
    a.update(1234, { loss: 2.345678, valLoss: 2.4, tokPerSec: 123456 });
    const [line] = tty.lines();
    assert.ok(line.length <= cols - 1, `${line.length} > ${cols - 1}: ${line}`);
    assert.match(line, /ETA 3m36s$/, line);
    assert.match(line, /^\[12\/140\] /, `the place [i/n] is kept: ${line}`);
    if (cols === 80) assert.match(line, /~ 21% step 1234\/5678 ETA/, line);
  }
  // a terminal of unknown width (columns 0, as under `script`) counts as 80 columns
  {
    const tty = Object.assign(new FakeTty(80), { columns: 0 });
    const board = createProgressBoard({ stream: tty, now: () => 0, minIntervalMs: 0 });
    board.add('[1/1] a', 10).update(1, {});
    assert.deepEqual(tty.lines(), ['[1/1] a 10% step 1/10']);
  }
  // a short label keeps every field
  let t = 0;
  const tty = new FakeTty(80);
  const board = createProgressBoard({ stream: tty, now: () => t, minIntervalMs: 0 });
  const a = board.add('[1/2] x', 10);
  t = 1000;
  a.update(5, { loss: 1, valLoss: 1.5, tokPerSec: 10 });
  assert.deepEqual(tty.lines(), ['[1/2] x 50% step 5/10 loss 1.000 val 1.500 10.0 tok/s ETA 1s']);
});

test('updates are throttled on a TTY but evaluations and finished runs always draw', () => {
  let t = 0;
  const tty = new FakeTty();
  const board = createProgressBoard({ stream: tty, now: () => t, minIntervalMs: 100 });
  const a = board.add('[1/1] a', 1000);
  const writes = () => tty.raw.split('\x1b[J').length - 1;
  const w0 = writes();
  t = 10;
  a.update(1, { loss: 3 });
  t = 20;
  a.update(2, { loss: 3 });
  assert.equal(writes(), w0, 'no redraw within 100 ms');
  a.update(3, { valLoss: 3 });
  assert.equal(writes(), w0 + 1, 'an evaluation draws');
  t = 200;
  a.update(4, {});
  assert.equal(writes(), w0 + 2);
});

test('not a TTY: plain lines (every 10%, each evaluation, the end), no escape codes', () => {
  let t = 0;
  let out = '';
  const board = createProgressBoard({ stream: { write: (s: string) => (out += s), isTTY: false }, now: () => t });
  const a = board.add('[1/2] a', 100);
  const b = board.add('[2/2] b', 100);
  for (let s = 1; s <= 100; s++) {
    t += 100;
    a.update(s, { loss: 2 });
    if (s === 50) b.update(s, { valLoss: 2.5 });
  }
  a.done('ok');
  board.log('[ceg] note');
  assert.doesNotMatch(out, /\x1b|\r/);
  const lines = out.trim().split('\n');
  assert.equal(lines.filter((l) => l.startsWith('[1/2] a ')).length, 11, out); // 10%..100% and the done line
  assert.ok(
    lines.some((l) => /^\[2\/2\] b  50% step 50\/100 val 2\.500 elapsed/.test(l)),
    out,
  );
  assert.equal(lines.at(-1), '[ceg] note');
});

test("a child's progress over IPC draws on the parent's board like a local one; a child that exits early closes its line", () => {
  let t = 0;
  const tty = new FakeTty();
  const board = createProgressBoard({ stream: tty, now: () => t, minIntervalMs: 0 });
  const feed = boardFeed(board);
  // the messages cross a structured-clone boundary, as over process.send
  const send = (m: ProgressEvent) => feed.onMessage(structuredClone(m));
  const p = progressOverIpc('[3/7] rope smoke seed 2', 40, send);
  t = 4000;
  p.update(20, { loss: 2.25 });
  assert.deepEqual(tty.lines(), ['[3/7] rope smoke seed 2 50% step 20/40 loss 2.250 ETA 4s']);
  p.log('[ceg] resumed from step 10');
  feed.onExit(143);
  assert.equal(board.active(), 0);
  assert.deepEqual(tty.lines(), [
    '[ceg] resumed from step 10',
    '[3/7] rope smoke seed 2 done: step 20/40 in 4s; stopped (exit 143)',
  ]);
  feed.onMessage({ unrelated: true }); // other messages are ignored
});
