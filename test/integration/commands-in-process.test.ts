import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { AwsClients } from '../../src/aws/clients.js';
import { main } from '../../src/cli/main.js';
import { awsInstancesCommand } from '../../src/commands/aws-instances.js';
import type { CommandContext } from '../../src/context/command.js';
import { openEnvironment } from '../../src/context/environment.js';
import { workspace } from '../helpers/cli.js';
import { TEST_REGION } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';

/**
 * Commands called in-process (issue 10): a handler takes `(options, context)`, so a test
 * runs it against a real local AWS (a moto_server for this file) and captures what it
 * prints, without spawning the CLI. The same through `main(argv, context)`, which also
 * shows commander checking what handlers used to re-check (numbers, choices): exit 2
 * before any AWS request.
 */

const moto = useMoto();
const ENV = 'inproc-test';

let saved: string | undefined;
beforeAll(() => {
  saved = process.env.PLATFORM_WORKDIR;
  process.env.PLATFORM_WORKDIR = workspace({ [ENV]: '' }).dir;
});
afterAll(() => {
  if (saved === undefined) delete process.env.PLATFORM_WORKDIR;
  else process.env.PLATFORM_WORKDIR = saved;
});

/** A context with the real environment opener and a captured stdout. */
function capture(): { context: CommandContext; out: () => string } {
  const chunks: string[] = [];
  return {
    context: { openEnvironment, stdout: { write: (text) => void chunks.push(text) } },
    out: () => chunks.join(''),
  };
}

async function launchWorker(): Promise<string> {
  const aws = new AwsClients({ region: TEST_REGION, endpoint: moto.endpoint });
  try {
    const r = await (await aws.ec2()).send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        InstanceType: 't3.medium',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'Name', Value: `${ENV}-compute` },
              { Key: 'Environment', Value: ENV },
              { Key: 'Layer', Value: 'compute' },
            ],
          },
        ],
      }),
    );
    return r.Instances![0]!.InstanceId!;
  } finally {
    aws.destroy();
  }
}

test('aws-instances --json, called in-process, lists the environment’s instance on the captured stdout', async () => {
  const id = await launchWorker();
  const { context, out } = capture();
  expect(await awsInstancesCommand({ env: ENV, json: true }, context)).toBe(0);
  const rows = JSON.parse(out()) as { instanceId: string; name: string; state: string }[];
  expect(rows.map((r) => [r.instanceId, r.name, r.state])).toEqual([[id, `${ENV}-compute`, 'running']]);
});

test('through main(argv, context): the table on stdout; bad numbers and choices exit 2 before AWS is asked', async () => {
  const id = await launchWorker();
  const table = capture();
  expect(await main(['aws-instances', '-e', ENV], table.context)).toBe(0);
  expect(table.out()).toContain(id);
  expect(table.out()).toMatch(/Private IP/);

  const { result, requests } = await moto.record(async () => {
    const bad = capture();
    return [
      await main(['scale-compute', '-e', ENV, 'many', '--yes'], bad.context),
      await main(['terminate-layer', '-e', ENV, 'etcd', '--yes'], bad.context),
      await main(['sync-status', '-e', ENV, '--timeout', '0'], bad.context),
      bad.out(),
    ];
  });
  expect(result).toEqual([2, 2, 2, '']);
  expect(requests).toEqual([]);
});
