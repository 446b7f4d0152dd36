import { readFileSync } from 'node:fs';
import path from 'node:path';
import { toolkitRoot } from './paths.js';

let cached: string | undefined;

/**
 * The toolkit's version: `version` of the package.json it ships with (semver). Read once,
 * on first use (no work at import time, STYLE.md §9).
 */
export function toolkitVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(path.join(toolkitRoot(), 'package.json'), 'utf8')) as { version: string }
  ).version;
  return cached;
}
