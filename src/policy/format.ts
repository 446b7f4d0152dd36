import type { PolicyReport } from './evaluate.js';

/**
 * The report as text for the operator: one line per violation, naming rule, severity,
 * resource and attribute; waived rules with their reason and expiry; a summary line.
 * In warn mode (play-*) the summary says so in capitals — the playground's 0.0.0.0/0 is a
 * deliberate choice that must stay visible on every run.
 */
export function formatPolicyReport(r: PolicyReport, opts: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  for (const res of r.results) {
    if (res.status === 'fail') {
      for (const f of res.findings)
        lines.push(`FAIL ${res.id} [${res.severity}] ${f.resource}: ${f.attribute} ${f.message}`);
      if (res.waiver?.expired)
        lines.push(`     waiver for ${res.id} expired on ${res.waiver.expires}: ${res.waiver.reason}`);
      lines.push(`     ${res.title} (${res.standard})`);
    } else if (res.status === 'waived') {
      lines.push(
        `WAIVED ${res.id} [${res.severity}] until ${res.waiver!.expires}: ${res.waiver!.reason} (${res.findings.length} finding${res.findings.length === 1 ? '' : 's'})`,
      );
    } else if (opts.verbose) {
      const why = res.status === 'not-evaluated' ? ` (no ${res.missing!.join(', ')})` : '';
      lines.push(`${res.status === 'pass' ? 'pass' : 'skip'} ${res.id}: ${res.title}${why}`);
    }
  }
  for (const w of r.unknownWaivers) lines.push(`FAIL waiver names no rule: ${w.ruleId} (until ${w.expires})`);
  const c = r.counts;
  const summary = `${c.pass} passed, ${c.fail} failed, ${c.waived} waived, ${c['not-evaluated']} not evaluated`;
  if (r.mode === 'warn' && c.fail > 0) {
    lines.push(
      `WARNING: ${r.environment} VIOLATES ${c.fail} POLICY RULE${c.fail === 1 ? '' : 'S'} (play-* environment: reported, not enforced): ${summary}`,
    );
  } else if (r.blocking) {
    lines.push(`policy: ${r.environment} is refused: ${summary}`);
  } else {
    lines.push(`policy: ${summary}`);
  }
  return `${lines.join('\n')}\n`;
}
