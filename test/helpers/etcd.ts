import type { LocalMember } from '../../src/backup/member.js';

/**
 * Talking to a real etcd member on loopback through its JSON gRPC gateway (`/v3/kv/*`,
 * etcd.io "gRPC gateway"): keys and values travel base64-encoded.
 */
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

async function call(m: LocalMember, what: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${m.clientUrl}/v3/kv/${what}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!r.ok) throw new Error(`etcd ${what}: HTTP ${r.status}`);
  return (await r.json()) as Record<string, unknown>;
}

/** Writes every key → value, 20 requests at a time. */
export async function putAll(m: LocalMember, kv: Map<string, string>): Promise<void> {
  const entries = [...kv];
  for (let i = 0; i < entries.length; i += 20) {
    await Promise.all(
      entries.slice(i, i + 20).map(([k, v]) => call(m, 'put', { key: b64(k), value: b64(v) })),
    );
  }
}

/** Every key → value of the member (a range over the whole keyspace). */
export async function getAll(m: LocalMember): Promise<Map<string, string>> {
  const r = await call(m, 'range', { key: b64('\0'), range_end: b64('\0') });
  const kvs = (r.kvs ?? []) as { key: string; value?: string }[];
  return new Map(kvs.map((x) => [unb64(x.key), x.value ? unb64(x.value) : '']));
}
