import type { Rule } from '../types.js';
import { WORLD } from './network.js';

/** Rules over the validated environment file (src/config/schema.ts keys). */

const isPlay = (env: string) => env.startsWith('play-');

export const environmentRules: Rule[] = [
  {
    id: 'kp-env-api-access',
    severity: 'medium',
    title: 'the public Kubernetes API is not open to the whole internet (KUBEAPI_ACCESS_LIST)',
    rationale:
      "An API server open to 0.0.0.0/0 is exposed to every credential-stuffing and pre-auth CVE; limit it to the operators' and CI networks.",
    standard: 'FSBP EKS.1 (cluster endpoint not publicly accessible), applied to a self-managed API',
    needs: ['env'],
    check: ({ env }) =>
      env.kubeapiAccessList
        .filter((c) => WORLD.includes(c))
        .map((c) => ({
          resource: env.file,
          attribute: 'KUBEAPI_ACCESS_LIST',
          message: `${c} may reach the Kubernetes API`,
        })),
  },
  {
    id: 'kp-env-account-pinned',
    severity: 'medium',
    title: 'outside play-*, the environment file pins its AWS account (AWS_ACCOUNT_ID)',
    rationale: 'Without it, a wrong AWS_PROFILE applies a production plan to another account.',
    standard: 'kube-platform DESIGN.md §3',
    needs: ['env'],
    check: ({ env }) =>
      isPlay(env.name) || env.awsAccountId
        ? []
        : [{ resource: env.file, attribute: 'AWS_ACCOUNT_ID', message: 'is not set' }],
  },
  {
    id: 'kp-env-etcd-quorum',
    severity: 'high',
    title: 'outside play-*, at least 3 masters (etcd members)',
    rationale:
      'One member tolerates no failure: a single instance replacement is an outage and a lost volume the cluster.',
    standard: 'etcd FAQ "What is failure tolerance?" (https://etcd.io/docs/v3.6/faq/)',
    needs: ['env'],
    check: ({ env }) =>
      isPlay(env.name) || env.masters.count >= 3
        ? []
        : [
            {
              resource: env.file,
              attribute: 'MASTER_COUNT',
              message: `is ${env.masters.count}, tolerates no failure`,
            },
          ],
  },
];
