import type { NodeInfo, PodInfo } from '../kube/api.js';
import type { ClusterVersions } from './skew.js';

/**
 * What the cluster runs, from the Kubernetes API: the kubelet of every node
 * (`status.nodeInfo.kubeletVersion`) and the image tag of every control-plane static pod's
 * mirror pod in kube-system (label `component`: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler — as the manifests under
 * platform/manifests/secure/manifests/ label them). etcd images are tagged `3.6.4-0`
 * (registry.k8s.io/etcd): the build suffix is dropped and a `v` added. Pure.
 */
export function versionsFrom(nodes: NodeInfo[], pods: PodInfo[], kubectl?: string): ClusterVersions {
  const tag = (image: string | null) => {
    const m = /:v?(\d+\.\d+\.\d+)(?:-[0-9A-Za-z.]+)?$/.exec(image ?? '');
    return m ? `v${m[1]}` : undefined;
  };
  const of = (component: string) =>
    pods
      .filter((p) => p.namespace === 'kube-system' && p.labels.component === component)
      .map((p) => tag(p.image))
      .filter((v): v is string => v !== undefined);
  return {
    apiServers: of('kube-apiserver'),
    controllerManagers: of('kube-controller-manager'),
    schedulers: of('kube-scheduler'),
    etcdMembers: of('etcd'),
    kubelets: nodes.map((n) => n.kubeletVersion).filter((v): v is string => Boolean(v)),
    ...(kubectl ? { kubectl } : {}),
  };
}

/** The client version from `kubectl version --client -o json` output, e.g. `v1.34.1`. */
export function kubectlVersionFrom(json: string): string | undefined {
  try {
    const v = (JSON.parse(json) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion;
    const m = /^v(\d+\.\d+\.\d+)/.exec(v ?? '');
    return m ? `v${m[1]}` : undefined;
  } catch {
    return undefined;
  }
}
