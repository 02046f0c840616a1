/**
 * The layer check (scripts/check-layers.ts): the code base passes it, and it catches an upward
 * import of every kind (static, type-only, re-export, dynamic) with the file and line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerOf, sourceFiles, violations } from '../scripts/check-layers.js';

test('src/ has no upward import', () => {
  const files = sourceFiles();
  assert.ok(files.length > 50, `found only ${files.length} files`);
  assert.deepEqual(violations(files), []);
});

test('layers: top-level files are core, folders are their layer, lab.ts is the top', () => {
  assert.equal(layerOf('src/config.ts'), 'core');
  assert.equal(layerOf('src/log.ts'), 'core');
  assert.equal(layerOf('src/engine/index.ts'), 'engine');
  assert.equal(layerOf('src/model/attention/nsa.ts'), 'model');
  assert.equal(layerOf('src/train/child.ts'), 'train');
  assert.equal(layerOf('src/cli/main.ts'), 'cli');
  assert.equal(layerOf('src/lab.ts'), 'lab');
  assert.throws(() => layerOf('src/newthing/x.ts'), /has no layer/);
});

test('an upward import of any kind is reported with file, line and layers; downward ones are not', () => {
  const files: Record<string, string> = {
    'src/train/a.ts': [
      "import { x } from '../model/gpt.js';", // down: fine
      "import { createProgress } from '../cli/progress.js';", // line 2: up
      "import type { Row } from '../report/types.js';", // line 3: up, type-only
      "const m = await import('../ceg/index.js');", // line 4: up, dynamic
    ].join('\n'),
    'src/engine/b.ts': "export { y } from '../data/index.js';\nimport { z } from '../config.js';", // line 1: re-export up; core is below
    'src/config.ts': "import { tf } from './engine/index.js';", // core imports engine: up
    'src/lab.ts': "import { main } from './cli/main.js';", // the top imports anything
  };
  const found = violations(Object.keys(files), (f) => files[f]!);
  assert.deepEqual(
    found.map((v) => `${v.file}:${v.line} ${v.from}->${v.to} ${v.target}`),
    [
      'src/train/a.ts:2 train->cli src/cli/progress.ts',
      'src/train/a.ts:3 train->report src/report/types.ts',
      'src/train/a.ts:4 train->ceg src/ceg/index.ts',
      'src/engine/b.ts:1 engine->data src/data/index.ts',
      'src/config.ts:1 core->engine src/engine/index.ts',
    ],
  );
});
