/** Number formats shared by the report's sections. */

export const rate = (rows: number, seconds: number) => rows / seconds;

/** Whole numbers with thousands separators: 12,345. */
export const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

/** Milliseconds to a tenth; n/a where nothing was measured (e.g. no write was applied). */
export const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');

/** A table cell must not break the table. */
export const cell = (text: string) => text.replaceAll('|', '/').replaceAll('\n', ' ');
