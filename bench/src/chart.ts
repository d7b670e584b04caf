/** A horizontal bar chart as a standalone SVG: one bar per measured figure, nothing estimated. */
export interface Bar {
  label: string;
  value: number;
  group: string;
}

const COLORS = ['#2f6f4f', '#8a5a2b', '#3b5b92', '#7a3b69', '#666666'];

export function barChartSvg(title: string, unit: string, bars: readonly Bar[], better = 'longer is better'): string {
  const labelWidth = 300;
  const chartWidth = 420;
  const rowHeight = 28;
  const top = 40;
  const width = labelWidth + chartWidth + 110;
  const height = top + bars.length * rowHeight + 30;
  const max = Math.max(...bars.map((b) => b.value), 1);
  const groups = [...new Set(bars.map((b) => b.group))];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const rows = bars.map((b, i) => {
    const y = top + i * rowHeight;
    const w = Math.max(1, (b.value / max) * chartWidth);
    const color = COLORS[groups.indexOf(b.group) % COLORS.length];
    return [
      `<text x="${labelWidth - 8}" y="${y + 17}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${color}"/>`,
      `<text x="${labelWidth + w + 6}" y="${y + 17}">${b.value >= 100 ? Math.round(b.value).toLocaleString('en-US') : b.value.toFixed(1)}</text>`,
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...rows,
    `<text x="${labelWidth}" y="${height - 8}" fill="#555">${esc(unit)} (${esc(better)})</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
