import { readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';

/**
 * The operator's CLI runs as an esbuild bundle (package.json `build:cli`, dist/cli/): the
 * launcher loads it, and the only installed packages it leaves to node_modules are the AWS
 * SDK's, which src/aws/sdk.ts loads by `require`, one copy per process. Everything else is
 * in the bundle: a package left out would be loaded module by module again, and a bundled
 * SDK package would be a second copy beside the required one. Read from esbuild's metafile
 * (dist/cli/meta.json), which lists every import of every output file.
 */

const REPO = path.resolve(import.meta.dirname, '..', '..', '..');

interface Meta {
  outputs: Record<string, { imports?: { path: string; external?: boolean }[] }>;
}

const meta = JSON.parse(readFileSync(path.join(REPO, 'dist', 'cli', 'meta.json'), 'utf8')) as Meta;
const external = new Set(
  Object.values(meta.outputs).flatMap((o) => (o.imports ?? []).filter((i) => i.external).map((i) => i.path)),
);
const builtin = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!);
const sdk = (spec: string) => spec.startsWith('@aws-sdk/') || spec.startsWith('@smithy/');

test('the launcher runs the bundle', () => {
  const launcher = readFileSync(path.join(REPO, 'scripts', 'kube-platform'), 'utf8');
  expect(launcher).toMatch(/'\.\.\/dist\/cli\/main\.js'/);
  expect(Object.keys(meta.outputs)).toContain('dist/cli/main.js');
});

test('the bundle leaves the AWS SDK to node_modules, and no other installed package', () => {
  expect([...external].filter(sdk)).toEqual(
    expect.arrayContaining(['@aws-sdk/client-s3', '@aws-sdk/client-kms', '@aws-sdk/client-ec2']),
  );
  // what else is left out are optional dependencies of bundled packages that are not
  // installed (ws: bufferutil, utf-8-validate; node-fetch: encoding), which their callers
  // require inside try/catch
  const require = createRequire(path.join(REPO, 'package.json'));
  const installed = [...external]
    .filter((s) => !builtin(s) && !sdk(s))
    .filter((s) => {
      try {
        require.resolve(s);
        return true;
      } catch {
        return false;
      }
    });
  expect(installed).toEqual([]);
});
