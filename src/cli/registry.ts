import type { RegisteredCommand } from './common.js';
import { agentSetupSpec } from './specs/agent-setup.js';
import { awsElbsSpec } from './specs/aws-elbs.js';
import { awsInstancesSpec } from './specs/aws-instances.js';
import { awsVolumesSpec } from './specs/aws-volumes.js';
import { cleanupSpec } from './specs/cleanup.js';
import { etcdBackupSpec } from './specs/etcd-backup.js';
import { etcdRestoreSpec } from './specs/etcd-restore.js';
import { exportKubeconfigSpec } from './specs/export-kubeconfig.js';
import { fetchSecretsSpec } from './specs/fetch-secrets.js';
import { localAwsSpec } from './specs/local-aws.js';
import { manifestSyncSpec } from './specs/manifest-sync.js';
import { policySpec } from './specs/policy.js';
import { rollSpec } from './specs/roll.js';
import { rolloutSpec } from './specs/rollout.js';
import { runSpec } from './specs/run.js';
import { scaleComputeSpec } from './specs/scale-compute.js';
import { statusSpec } from './specs/status.js';
import { syncStatusSpec } from './specs/sync-status.js';
import { terminateLayerSpec } from './specs/terminate-layer.js';
import { terraformSpec } from './specs/terraform.js';
import { upgradeSpec } from './specs/upgrade.js';
import { uploadSecretsSpec } from './specs/upload-secrets.js';
import { validateSpec } from './specs/validate.js';
import { whoamiSpec } from './specs/whoami.js';

/**
 * The command table, in the order `--help` lists them. One spec per command in
 * src/cli/specs/<command>.ts (its flags, examples and exit codes); its handler in
 * src/commands/<command>.ts, imported lazily when the command runs.
 */
export const commands: RegisteredCommand[] = [
  runSpec,
  policySpec,
  manifestSyncSpec,
  syncStatusSpec,
  statusSpec,
  validateSpec,
  rollSpec,
  agentSetupSpec,
  etcdBackupSpec,
  etcdRestoreSpec,
  rolloutSpec,
  upgradeSpec,
  uploadSecretsSpec,
  fetchSecretsSpec,
  exportKubeconfigSpec,
  awsInstancesSpec,
  awsElbsSpec,
  awsVolumesSpec,
  scaleComputeSpec,
  terminateLayerSpec,
  terraformSpec,
  cleanupSpec,
  whoamiSpec,
  localAwsSpec,
];

export { type CommandSpec, envOption, localOption, type RegisteredCommand, STD_EXIT } from './common.js';
