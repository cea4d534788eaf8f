/**
 * The layer order is enforced by `npm run lint` (eslint.config.js): an import that climbs it, static,
 * type-only or dynamic, is an error; imports down the order and within a folder are not.
 */
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/common/paths.js';

const eslint = new ESLint({ cwd: PACKAGE_ROOT });

/** The layer-rule errors for `code` as if it were the file `path` (relative to the root). */
async function layerErrors(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(PACKAGE_ROOT, path) });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax')
    .map((m) => m.message);
}

describe('layer order (eslint.config.js)', () => {
  it.each([
    [
      'src/observe/x.ts',
      "import { renderTable } from '../report/table.js';\nexport const t = renderTable;\n",
    ],
    ['src/report/x.ts', "import type { Claim } from '../lab/types.js';\nexport type C = Claim;\n"],
    [
      'src/observe/x.ts',
      "import { TCP_TIMEWAIT_LEN_MS } from '../model/kernel-rules.js';\nexport const n = TCP_TIMEWAIT_LEN_MS;\n",
    ],
    [
      'src/lab/probes/x.ts',
      "import { registerLab } from '../../cli/lab.js';\nexport const r = registerLab;\n",
    ],
    ['src/common/x.ts', "export const load = () => import('../sockets/errno.js');\n"],
  ])('%s: a climbing import fails (%#)', async (path, code) => {
    const errors = await layerErrors(path, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/may import only from/);
  });

  it.each([
    ['src/observe/x.ts', "import { errnoName } from '../sockets/errno.js';\nexport const e = errnoName;\n"],
    ['src/cli/x.ts', "import { CLAIMS } from '../lab/registry.js';\nexport const c = CLAIMS;\n"],
    ['src/lab/claims/x.ts', "import { tcp } from '../probes/remote.js';\nexport const t = tcp;\n"],
    ['src/report/x.ts', "import { renderTable } from '../common/table.js';\nexport const t = renderTable;\n"],
  ])('%s: an import down the order passes (%#)', async (path, code) => {
    expect(await layerErrors(path, code)).toEqual([]);
  });
});
