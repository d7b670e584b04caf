/**
 * Postgres LSNs are 64-bit WAL positions printed as two hex halves ("16/B374D848").
 * They are handled as bigint so comparisons are exact beyond 2^53.
 */
export type Lsn = bigint;

/** An LSN as Postgres prints it; the one definition of the format (headers, checkpoints, parseLsn). */
export const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): Lsn {
  const match = LSN_TEXT.exec(text);
  if (!match) throw new TypeError(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  const high = (lsn >> 32n).toString(16).toUpperCase();
  const low = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}
