import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { instanceId, resolveNodeId } from '../../src/agent/imds.js';
import { setLogSink } from '../../src/log.js';

/** A stand-in for the instance metadata service on 127.0.0.1 that enforces IMDSv2. */
async function fakeImds(id: string): Promise<{ endpoint: string; calls: string[]; close: () => void }> {
  const calls: string[] = [];
  const token = 'tok-123456';
  const srv = http.createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    if (
      req.method === 'PUT' &&
      req.url === '/latest/api/token' &&
      req.headers['x-aws-ec2-metadata-token-ttl-seconds']
    ) {
      res.end(token);
    } else if (
      req.url === '/latest/meta-data/instance-id' &&
      req.headers['x-aws-ec2-metadata-token'] === token
    ) {
      res.end(id);
    } else {
      res.statusCode = 401;
      res.end();
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, calls, close: () => srv.close() };
}

test('the instance id comes from IMDSv2: a session token first, then the metadata with it', async () => {
  const imds = await fakeImds('i-0123456789abcdef0');
  try {
    expect(await instanceId({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint })).toBe(
      'i-0123456789abcdef0',
    );
    expect(imds.calls).toEqual(['PUT /latest/api/token', 'GET /latest/meta-data/instance-id']);
  } finally {
    imds.close();
  }
});

test('no IMDS: disabled, refused or not an instance id; the host name is the fallback, --node-id wins', async () => {
  const imds = await fakeImds('not-an-id');
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  try {
    expect(await instanceId({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint })).toBeUndefined();
    expect(
      await instanceId({
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
      }),
    ).toBeUndefined();
    expect(imds.calls).toHaveLength(2); // the disabled call asked nothing
    expect(
      await instanceId({ AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9' }, 500),
    ).toBeUndefined();
    expect(await resolveNodeId('i-given', { AWS_EC2_METADATA_DISABLED: 'true' })).toBe('i-given');
    expect(lines).toEqual([]);
    expect(await resolveNodeId(undefined, { AWS_EC2_METADATA_DISABLED: 'true' })).toBe(
      os.hostname().replace(/[^A-Za-z0-9._-]/g, '-'),
    );
    expect(lines.join('\n')).toMatch(/no instance metadata \(IMDSv2\) answered/);
  } finally {
    restore();
    imds.close();
  }
});

test('a first IMDS lookup that misses is retried: the node reports under its instance id, not its host name', async () => {
  // IMDS answers only from the second attempt on (a slow boot, a CPU-starved host)
  let up = false;
  const srv = http.createServer((req, res) => {
    if (!up) {
      res.statusCode = 503;
      res.end();
    } else if (req.method === 'PUT') res.end('tok');
    else res.end('i-0123456789abcdef0');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const slept: number[] = [];
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  try {
    const id = await resolveNodeId(
      undefined,
      { AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint },
      {
        sleep: async (ms) => {
          slept.push(ms);
          up = true;
        },
      },
    );
    expect(id).toBe('i-0123456789abcdef0');
    expect(slept).toEqual([1000]);
    expect(lines).toEqual([]);
    // never answering: 3 attempts, then the host name with the warning
    up = false;
    const never: number[] = [];
    const fallback = await resolveNodeId(
      undefined,
      { AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint },
      { sleep: async (ms) => void never.push(ms) },
    );
    expect(never).toEqual([1000, 2000]);
    expect(fallback).toBe(os.hostname().replace(/[^A-Za-z0-9._-]/g, '-'));
    expect(lines.join('\n')).toMatch(/no instance metadata \(IMDSv2\) answered/);
  } finally {
    restore();
    srv.close();
  }
});
