// postinstall: node_modules/ceg-lab -> ../src, so notebooks `import * as lab from 'ceg-lab/lab'`
// (tslab compiles only files under the notebook's folder or reached through node_modules).
// Made at install time so no node_modules path is tracked by git.
import fs from 'node:fs';
import path from 'node:path';
const link = path.resolve('node_modules', 'ceg-lab');
fs.mkdirSync(path.dirname(link), { recursive: true });
try {
  fs.rmSync(link, { recursive: true, force: true });
} catch {}
fs.symlinkSync(path.join('..', 'src'), link, 'dir');
