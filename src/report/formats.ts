/**
 * Tables out of the CLI in other formats than the terminal's aligned columns:
 * `--format table|csv|json|md` and `--out FILE` of `ceg report` and `ceg runs`.
 *  - csv: RFC 4180 (header row; cells with a comma, quote or newline quoted); null -> empty.
 *  - json: an array of row objects (non-finite numbers -> null, as JSON has none).
 *  - md: a GitHub markdown table.
 * --out writes with the run store's atomic writer (a reader never sees half a file).
 */
import type { ColumnTable } from 'arquero';
import { alignColumns } from '../ceg/index.js';
import { writeFileAtomic } from '../runs/index.js';

export const OUTPUT_FORMATS = ['table', 'csv', 'json', 'md'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

type Row = Record<string, unknown>;

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : String(v);
  if (Array.isArray(v)) return v.join(' ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function csvCell(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** rows (objects) with `columns` in that order, in `format` ('table': aligned columns). */
export function formatRows(rows: readonly Row[], columns: readonly string[], format: OutputFormat): string {
  switch (format) {
    case 'csv':
      return (
        [
          columns.map(csvCell).join(','),
          ...rows.map((r) => columns.map((c) => csvCell(cellText(r[c]))).join(',')),
        ].join('\n') + '\n'
      );
    case 'json':
      return (
        JSON.stringify(
          rows.map((r) =>
            Object.fromEntries(
              columns.map((c) => [c, typeof r[c] === 'number' && !Number.isFinite(r[c]) ? null : (r[c] ?? null)]),
            ),
          ),
          null,
          2,
        ) + '\n'
      );
    case 'md': {
      const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
      return (
        [
          `| ${columns.map(esc).join(' | ')} |`,
          `| ${columns.map(() => '---').join(' | ')} |`,
          ...rows.map((r) => `| ${columns.map((c) => esc(cellText(r[c]))).join(' | ')} |`),
        ].join('\n') + '\n'
      );
    }
    case 'table':
      return (
        alignColumns(
          [...columns],
          rows.map((r) => columns.map((c) => cellText(r[c]) || '-')),
        ) + '\n'
      );
  }
}

/** An arquero table in `format`, its columns in order (the CEG table's frame: cegFrame). */
export function formatFrame(table: ColumnTable, format: OutputFormat): string {
  const columns = table.columnNames();
  const rows: Row[] = Array.from({ length: table.numRows() }, (_, i) =>
    Object.fromEntries(columns.map((c) => [c, table.get(c, i)])),
  );
  return formatRows(rows, columns, format);
}

/** Print `text` to stdout, or write it to `out` atomically. */
export function emit(text: string, out?: string): void {
  if (out) writeFileAtomic(out, text);
  else process.stdout.write(text);
}
