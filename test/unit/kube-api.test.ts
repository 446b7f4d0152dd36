import { KubeUnreachableError, kubeApiFrom, pdbFromStatus } from '../../src/kube/api.js';
import { type KubeDouble, startKubeDouble } from '../helpers/kube-api-double.js';

/**
 * src/kube/api.ts through the real client (@kubernetes/client-node) against the API test
 * double (test/helpers/kube-api-double.ts): TLS both ways, the wire format of every call.
 */

let d: KubeDouble;
beforeAll(async () => {
  d = await startKubeDouble({
    nodes: [
      { name: 'm1', internalIp: '10.0.1.10', instanceId: 'i-0aaa' },
      { name: 'w1', internalIp: '10.0.2.10', ready: false },
    ],
    pods: [
      {
        namespace: 'kube-system',
        name: 'kube-apiserver-m1',
        nodeName: 'm1',
        mirror: true,
        priorityClassName: 'system-node-critical',
      },
      { namespace: 'kube-system', name: 'kube-proxy-abc', nodeName: 'w1', daemonSet: true },
      { namespace: 'web', name: 'web-1', nodeName: 'w1', labels: { app: 'web' } },
      { namespace: 'web', name: 'web-2', nodeName: 'm1', labels: { app: 'web' } },
      { namespace: 'web', name: 'free', nodeName: 'w1' },
    ],
    pdbs: [{ namespace: 'web', name: 'web-pdb', matchLabels: { app: 'web' }, minAvailable: 2 }],
  });
});
afterAll(() => d.close());

test('readyz, nodes and pods with a field selector, over mutual TLS', async () => {
  const api = await kubeApiFrom(d.kubeconfig);
  await api.readyz();
  const nodes = await api.listNodes();
  expect(nodes.map((n) => [n.name, n.ready, n.internalIp, n.instanceId])).toEqual([
    ['m1', true, '10.0.1.10', 'i-0aaa'],
    ['w1', false, '10.0.2.10', null],
  ]);
  expect(nodes[1]!.notReadyReason).toBe('KubeletNotReady: container runtime network not ready');
  const onW1 = await api.listPods('spec.nodeName=w1');
  expect(onW1.map((p) => p.name).sort()).toEqual(['free', 'kube-proxy-abc', 'web-1']);
  expect(onW1.find((p) => p.name === 'kube-proxy-abc')!.daemonSet).toBe(true);
  const all = await api.listPods();
  expect(all.find((p) => p.name === 'kube-apiserver-m1')).toMatchObject({
    mirror: true,
    priorityClassName: 'system-node-critical',
  });
  expect(
    d.requests.some(
      (r) => r.path === '/api/v1/pods?fieldSelector=spec.nodeName%3Dw1' && r.user === 'kubernetes-admin',
    ),
  ).toBe(true);
});

test('cordon patches spec.unschedulable; eviction: 201, 429 naming the PDB, 404 counts as gone', async () => {
  const api = await kubeApiFrom(d.kubeconfig);
  await api.cordon('w1');
  expect(d.nodes.get('w1')!.unschedulable).toBe(true);
  expect((await api.listNodes()).find((n) => n.name === 'w1')!.unschedulable).toBe(true);
  expect(await api.evict('web', 'free')).toEqual({ evicted: true });
  expect(await api.evict('web', 'web-1')).toEqual({
    evicted: false,
    pdb: 'web-pdb',
    message: 'The disruption budget web-pdb needs 2 healthy pods and has 2 currently',
  });
  expect(await api.evict('web', 'no-such-pod')).toEqual({ evicted: true });
  d.pdbs[0]!.minAvailable = 1;
  expect(await api.evict('web', 'web-1')).toEqual({ evicted: true });
});

test('not ready, unreachable, or an unknown client: a KubeUnreachableError at once', async () => {
  const api = await kubeApiFrom(d.kubeconfig);
  d.ready = false;
  await expect(api.readyz()).rejects.toThrow(/readyz: HTTP 500: \[-\]etcd failed/);
  d.ready = true;
  const other = await startKubeDouble();
  const port = new URL(other.server).port;
  await other.close();
  const t0 = Date.now();
  const gone = await kubeApiFrom(d.kubeconfig.replace(d.server, `https://127.0.0.1:${port}`));
  await expect(gone.readyz()).rejects.toThrow(KubeUnreachableError);
  await expect(gone.listNodes()).rejects.toThrow(/is unreachable|ECONNREFUSED/);
  expect(Date.now() - t0).toBeLessThan(3000);
  // a client certificate from another CA is refused by the server's TLS
  const stranger = await startKubeDouble();
  const foreign = await kubeApiFrom(
    stranger.kubeconfig
      .replace(stranger.server, d.server)
      .replace(
        /certificate-authority-data: .*/,
        `certificate-authority-data: ${/certificate-authority-data: (.*)/.exec(d.kubeconfig)![1]}`,
      ),
  );
  await expect(foreign.readyz()).rejects.toThrow(KubeUnreachableError);
  await stranger.close();
});

test('pdbFromStatus reads the DisruptionBudget cause', () => {
  expect(
    pdbFromStatus(
      '{"message":"x","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget db needs 3 healthy pods and has 3 currently"}]}}',
    ).pdb,
  ).toBe('db');
  expect(pdbFromStatus({ message: 'Cannot evict' })).toEqual({ pdb: null, message: 'Cannot evict' });
  expect(pdbFromStatus('not json').message).toBe('not json');
});
