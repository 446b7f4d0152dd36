import { AwsClients } from '../../src/aws/clients.js';
import { awsSettings } from '../../src/aws/storage-clients.js';

/** The embedded local AWS reaches the clients explicitly; this process's environment is not changed. */
test('awsSettings: the local AWS endpoint and credentials are passed, process.env is untouched', async () => {
  const before = { ...process.env };
  const local = {
    endpoint: 'http://127.0.0.1:4599',
    env: {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:4599',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    },
  };
  const s = awsSettings('eu-west-1', 'prod-admin', local);
  expect(s).toEqual({
    region: 'eu-west-1',
    profile: 'prod-admin',
    endpoint: 'http://127.0.0.1:4599',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const aws = new AwsClients(s);
  try {
    const kms = await aws.kms();
    // the static local credentials win over the profile: no real profile is read for the local AWS
    expect(await kms.config.credentials()).toMatchObject({ accessKeyId: 'testing' });
    expect(await kms.config.endpoint?.()).toMatchObject({ hostname: '127.0.0.1', port: 4599 });
  } finally {
    aws.destroy();
  }
  expect(process.env).toEqual(before);
  // without a local AWS: the standard variable when exported, else real AWS
  const saved = process.env.AWS_ENDPOINT_URL;
  try {
    delete process.env.AWS_ENDPOINT_URL;
    expect(awsSettings('eu-west-1')).toEqual({ region: 'eu-west-1' });
    process.env.AWS_ENDPOINT_URL = 'http://localhost:5000';
    expect(awsSettings('eu-west-1').endpoint).toBe('http://localhost:5000');
  } finally {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
  }
});
