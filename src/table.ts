import type { ResultSink } from './context/command.js';

/**
 * Tables for stdout, through cli-table3 (results on stdout, STYLE.md §8).
 * @param head column titles
 * @param rows cells; null/undefined print as "-"
 */
export async function renderTable(
  head: string[],
  rows: (string | number | null | undefined)[][],
): Promise<string> {
  const { default: Table } = await import('cli-table3');
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  return t.toString();
}

/** One column of a result table: its title and how to get the cell from a row. */
export interface Column<T> {
  title: string;
  cell: (row: T) => string | number | boolean | null | undefined;
}

/**
 * Prints rows on `out` (the command's stdout): a table, or with `json` the rows themselves as a JSON array
 * (for machines: `cmd --json | jq`).
 */
export async function printRows<T>(
  rows: T[],
  columns: Column<T>[],
  json: boolean | undefined,
  out: ResultSink,
): Promise<void> {
  if (json) {
    out.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const table = await renderTable(
    columns.map((c) => c.title),
    rows.map((r) =>
      columns.map((c) => {
        const v = c.cell(r);
        return typeof v === 'boolean' ? String(v) : v;
      }),
    ),
  );
  out.write(`${table}\n`);
}
