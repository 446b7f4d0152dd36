/**
 * Tables for stdout, through cli-table3 (results on stdout, STYLE.md §8).
 * @param head column titles
 * @param rows cells; null/undefined print as "-"
 */
export async function renderTable(head: string[], rows: (string | number | null | undefined)[][]): Promise<string> {
  const { default: Table } = await import('cli-table3');
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  return t.toString();
}
