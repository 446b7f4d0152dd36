// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are Terraform template syntax under test
import { UserError } from '../../src/errors.js';
import { toolkitRoot } from '../../src/paths.js';
import { agentNodeFlags, renderTemplate, renderUnit } from '../helpers/unit.js';

const vars = { environment: 'prod', bucket: 'kp-prod-123456789012-eu-west-1-secrets', region: 'eu-west-1' };

test('the unit runs the agent for the instance layer, restarts always and stops with SIGTERM', async () => {
  const unit = await renderUnit(toolkitRoot(), vars);
  const lines = unit.split('\n');
  const key = (k: string) => lines.filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
  expect(key('ExecStart')).toEqual([
    '/usr/bin/node --lite-mode --max-semi-space-size=1 /opt/kube-platform/manifest-sync.mjs --environment prod --bucket kp-prod-123456789012-eu-west-1-secrets' +
      ' --region eu-west-1 --layer %i --dest /etc/kubernetes/manifests --root /etc/kubernetes --state-dir /var/lib/kube-platform',
  ]);
  expect(key('Restart')).toEqual(['always']);
  expect(key('StartLimitIntervalSec')).toEqual(['0']);
  expect(key('KillSignal')).toEqual(['SIGTERM']);
  expect(key('StateDirectory')).toEqual(['kube-platform']);
  expect(key('ReadWritePaths')).toEqual(['/etc/kubernetes']);
  expect(key('WantedBy')).toEqual(['multi-user.target']);
  expect(unit).not.toMatch(/\$\{/);
  expect(agentNodeFlags(unit)).toEqual(['--lite-mode', '--max-semi-space-size=1']);
  expect(() => agentNodeFlags('[Service]\nExecStart=/bin/true\n')).toThrow(UserError);
});

test('templatefile() semantics: ${name}, the $${ escape; anything else is refused', () => {
  expect(renderTemplate('a ${x} $${x} %%{y}', { x: 'v' })).toBe('a v ${x} %{y}');
  expect(() => renderTemplate('a\n${y}', { x: 'v' }, 't')).toThrow('t:2: vars map does not contain key "y"');
  expect(() => renderTemplate('${x}', { x: 'a b' })).toThrow(UserError);
  expect(() => renderTemplate('${x}', { x: 'v\nExecStartPre=/bin/sh' })).toThrow(/must match/);
  expect(() => renderTemplate('${upper(x)}', { x: 'v' })).toThrow(/only a variable name/);
  expect(() => renderTemplate('%{ if x }a%{ endif }', { x: 'v' })).toThrow(/directives/);
});
