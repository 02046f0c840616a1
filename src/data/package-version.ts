/** The installed version of an npm package, read from its package.json (works with "exports" maps). */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { DataError } from './errors.js';

const require = createRequire(import.meta.url);

export function packageVersion(pkg: string): string {
  let dir = path.dirname(require.resolve(pkg));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (json.name === pkg && json.version) return json.version;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new DataError(`cannot find package.json of "${pkg}" above ${require.resolve(pkg)}`);
    dir = up;
  }
}
