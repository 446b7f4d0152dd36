import type { ChangeSetView } from './plan.js';

/**
 * The change set as text for the operator (stdout): bootstrap, PKI (paths and reasons only),
 * per layer the files added/changed/removed with unified diffs of non-secret files (keys and
 * credentials only "changed"), the agent, the Terraform plan's resources. Pure.
 */
export function formatChangeSet(cs: ChangeSetView, opts: { terraformText?: string } = {}): string {
  const out: string[] = [];
  out.push(`# change set of ${cs.environment} (account ${cs.account})`);
  out.push('', '## bootstrap');
  out.push(...(cs.bootstrap.length ? cs.bootstrap.map((a) => `  + ${a}`) : ['  in place']));
  if (cs.restored) {
    const g = Object.entries(cs.restored.generations)
      .map(([l, n]) => `${l} ${n}`)
      .join(', ');
    out.push('', '## working copy');
    out.push(
      `  secrets/${cs.environment}/ is empty: planned from the bucket's layers (${g}; ${cs.restored.files} files), which the apply writes there first`,
    );
  }
  out.push('', '## PKI and kubeconfigs');
  if (cs.pki.writes.length === 0 && cs.pki.modeFixes.length === 0) out.push('  in place');
  for (const w of cs.pki.writes) out.push(`  ${w.reason === 'missing' ? '+' : '~'} ${w.path} (${w.reason})`);
  for (const m of cs.pki.modeFixes) out.push(`  ~ ${m.path} (mode ${m.mode.toString(8)} -> 600)`);
  for (const e of cs.pki.expiring) out.push(`  ! ${e.path} expires in ${e.daysLeft} days`);
  out.push('', "## layers (against the bucket's current index)");
  if (cs.layers.length === 0) out.push('  nothing to publish');
  for (const l of cs.layers) {
    const p = l.plan;
    out.push(
      `  ${l.layer}: generation ${l.generation} -> ${p.added.length + p.changed.length + p.modeChanged.length + p.removed.length > 0 ? l.generation + 1 : `${l.generation} (unchanged)`}: ${p.added.length} added, ${p.changed.length} changed, ${p.modeChanged.length} mode changed, ${p.removed.length} removed, ${p.unchanged.length} unchanged`,
    );
    for (const f of p.added)
      out.push(`    + ${f}${l.diffs[f] === undefined ? ' (secret: content not shown)' : ''}`);
    for (const f of p.changed)
      out.push(`    ~ ${f}${l.diffs[f] === undefined ? ' (changed; secret: content not shown)' : ''}`);
    for (const f of p.modeChanged) out.push(`    ~ ${f} (mode)`);
    for (const f of p.removed)
      out.push(`    - ${f} (dropped from the index; old versions stay in the bucket)`);
    for (const f of p.changed) if (l.diffs[f] !== undefined) out.push(indent(l.diffs[f]!));
  }
  out.push('', '## manifest-sync agent');
  out.push(cs.agent.publish ? `  + publish ${cs.agent.key}` : `  in place (${cs.agent.key})`);
  out.push('', '## terraform');
  if (!cs.terraform) out.push('  skipped (--skip-terraform)');
  else {
    const s = cs.terraform.summary;
    if (cs.terraform.emptyState)
      out.push('  (planned against an empty state: the environment has no state bucket yet)');
    out.push(`  plan: ${s.add} to add, ${s.change} to change, ${s.destroy} to destroy`);
    for (const r of cs.terraform.resources) out.push(`    ${symbol(r.actions)} ${r.address}`);
    if (opts.terraformText) out.push(indent(opts.terraformText));
  }
  return `${out.join('\n')}\n`;
}

function symbol(actions: string[]): string {
  if (actions.includes('delete') && actions.includes('create')) return '-/+';
  if (actions.includes('delete')) return '-';
  if (actions.includes('create')) return '+';
  return '~';
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
}
