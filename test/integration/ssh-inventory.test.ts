import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { AwsClients } from '../../src/aws/clients.js';
import { exec } from '../../src/exec/index.js';
import { parseAgentOutput } from '../../src/ssh/agent.js';
import { workspace } from '../helpers/cli.js';
import { useMoto } from '../helpers/moto.js';
import { loopbackEnvFile, makeEnvKey, runAgentSetup } from '../helpers/sshd.js';

/**
 * agent-setup finding the bastion in the inventory (the local AWS), and refusing when there
 * is none. The agent is one this file starts (so agent-setup reuses it).
 */

const moto = useMoto();
const ENV = 'inv-test';
let ws: { dir: string; home: string };
let agent: { sock: string; pid: number };

beforeAll(async () => {
  ws = workspace({ [ENV]: loopbackEnvFile() });
  await makeEnvKey(path.join(ws.dir, 'secrets', ENV), ENV);
  agent = parseAgentOutput((await exec('ssh-agent', ['-s'], { cwd: os.tmpdir() })).stdout);
});

afterAll(() => {
  try {
    process.kill(agent.pid, 'SIGTERM');
  } catch {
    // already gone
  }
});

/** Launches an instance tagged as the Terraform modules tag theirs; returns its addresses. */
async function launch(
  name: string,
  layer: string,
): Promise<{ id: string; publicIp?: string; privateIp?: string }> {
  const aws = new AwsClients({ region: 'eu-west-1', endpoint: moto.endpoint });
  try {
    const r = await (await aws.ec2()).send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'Name', Value: name },
              { Key: 'Environment', Value: ENV },
              { Key: 'Layer', Value: layer },
            ],
          },
        ],
      }),
    );
    const i = r.Instances![0]!;
    return { id: i.InstanceId!, publicIp: i.PublicIpAddress, privateIp: i.PrivateIpAddress };
  } finally {
    aws.destroy();
  }
}

const env = () => ({
  ...moto.env,
  PLATFORM_WORKDIR: ws.dir,
  HOME: ws.home,
  AWS_PROFILE: undefined,
  PLATFORM_SECRETS_DIR: undefined,
  SSH_AUTH_SOCK: agent.sock,
  SSH_AGENT_PID: String(agent.pid),
});

test('no running bastion in the inventory: exit 2 with a hint, nothing written', async () => {
  await launch(`${ENV}-worker`, 'compute');
  const r = await runAgentSetup(['-e', ENV], env());
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`error: no running bastion with a public address in environment ${ENV}`);
  expect(r.stderr).toContain(`hint: list the instances with: aws-instances -e ${ENV}`);
  expect(r.stderr).toContain('--bastion HOST');
  expect(r.stdout).toBe('');
});

test('the bastion comes from the inventory; --pin console refuses a console without host keys', async () => {
  await launch(`${ENV}-worker`, 'compute');
  const b = await launch(`${ENV}-bastion`, 'bastion');
  expect(b.publicIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

  const r = await runAgentSetup(['-e', ENV], env());
  expect(r.code).toBe(0);
  expect(parseAgentOutput(r.stdout)).toEqual({ sock: agent.sock, pid: agent.pid });
  expect(r.stderr).toContain(`no pinned host key for bastion-${ENV} yet`);
  const config = readFileSync(path.join(ws.home, '.ssh', 'kube-platform', `${ENV}.config`), 'utf8');
  expect(config).toContain(`Host bastion-${ENV}\n  HostName ${b.publicIp}\n  Port 22\n`);

  // the local AWS's console output is a fixed sample without cloud-init's host key block
  const pinned = await runAgentSetup(['-e', ENV, '--pin', 'console'], env());
  expect(pinned.code).toBe(1);
  expect(pinned.stderr).toContain(`the console output of ${b.id} (bastion-${ENV}) holds no SSH host keys`);
  expect(pinned.stderr).toContain('hint: EC2 publishes console output a few minutes after boot');
}, 60_000);
