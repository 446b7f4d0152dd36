import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exec } from '../../src/exec/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { renderUnit, unitTemplatePath } from '../helpers/unit.js';

/**
 * The systemd unit cloud-init installs on nodes (issue 5, item 6): what test/helpers/unit.ts
 * renders is byte for byte what Terraform's templatefile() renders, and systemd accepts it.
 */

const vars = { environment: 'prod', bucket: 'kp-prod-123456789012-eu-west-1-secrets', region: 'eu-west-1' };

test('renderUnit() renders exactly what terraform templatefile() renders', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'unit-tf-'));
  const rc = path.join(dir, 'terraformrc');
  await writeFile(rc, '');
  await writeFile(
    path.join(dir, 'main.tf'),
    `output "unit" {\n  value = templatefile(${JSON.stringify(unitTemplatePath(toolkitRoot()))}, ${JSON.stringify(vars).replace(/":/g, '" =')})\n}\n`,
  );
  const env = { TF_CLI_CONFIG_FILE: rc, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
  await exec('terraform', ['init', '-input=false', '-no-color'], { cwd: dir, env });
  await exec('terraform', ['apply', '-auto-approve', '-input=false', '-no-color'], { cwd: dir, env });
  // -json: the exact string (the subprocess wrapper trims a final newline from raw output)
  const out = await exec('terraform', ['output', '-json', 'unit'], { cwd: dir, env });
  const rendered = await renderUnit(toolkitRoot(), vars);
  expect(rendered).toBe(JSON.parse(out.stdout));
  expect(rendered).toContain(
    '--environment prod --bucket kp-prod-123456789012-eu-west-1-secrets --region eu-west-1',
  );
});

test('systemd accepts the rendered unit (systemd-analyze verify)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'unit-verify-'));
  await mkdir(dir, { recursive: true });
  // ExecStartPre's kp-fetch-agent is written by cloud-init; this machine has none: /bin/true stands in
  const unit = (await renderUnit(toolkitRoot(), vars)).replace('/usr/local/sbin/kp-fetch-agent', '/bin/true');
  expect(unit).toContain('ExecStartPre=+/bin/true');
  const file = path.join(dir, 'manifest-sync@secure.service');
  await writeFile(file, unit);
  const r = await exec('systemd-analyze', ['verify', '--man=no', '--generators=no', file], {
    cwd: dir,
    reject: false,
  });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  // the check is not vacuous: a misspelt key is reported
  await writeFile(file, unit.replace('Restart=always', 'Restart=always\nRestartSecs=5'));
  const bad = await exec('systemd-analyze', ['verify', '--man=no', '--generators=no', file], {
    cwd: dir,
    reject: false,
  });
  expect(bad.stderr).toContain("Unknown key 'RestartSecs' in section [Service]");
});
