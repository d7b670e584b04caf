/**
 * The alert rules and the Grafana dashboard as data. Every rule in
 * infra/prometheus/alerts.yml is written `<query> <comparison> <threshold>`, so the
 * query can be evaluated (and plotted) on its own.
 */
import { readFileSync } from 'node:fs';
import { readYaml, repoPath } from './repo.ts';

export interface AlertRule {
  alert: string;
  expr: string;
  /** The expression without its trailing comparison: what the dashboard plots. */
  query: string;
  comparison: string;
  threshold: number;
}

export interface DashboardPanel {
  title: string;
  queries: string[];
  /** The value of the panel's last (alerting) threshold step, if it has one. */
  threshold: number | undefined;
}

// Greedy: the last comparison of the expression, followed only by a number.
const TRAILING_COMPARISON = /^(.+)\s+(==|!=|>=|<=|>|<)\s+(-?[0-9][0-9.eE+-]*)$/s;

export function alertRules(): AlertRule[] {
  const file = readYaml('infra/prometheus/alerts.yml') as { groups: Array<{ rules: Array<Record<string, string>> }> };
  return file.groups.flatMap((group) =>
    group.rules.map((rule) => {
      const alert = rule.alert ?? `(recording rule ${rule.record})`;
      const expr = String(rule.expr).trim();
      const match = TRAILING_COMPARISON.exec(expr);
      if (!match) throw new Error(`${alert}: expr is not "<query> <comparison> <threshold>": ${expr}`);
      const [, query, comparison, threshold] = match as unknown as [string, string, string, string];
      return { alert, expr, query: query.trim(), comparison, threshold: Number(threshold) };
    }),
  );
}

interface GrafanaPanel {
  title?: string;
  type?: string;
  panels?: GrafanaPanel[];
  targets?: Array<{ expr?: string }>;
  fieldConfig?: { defaults?: { thresholds?: { steps?: Array<{ value: number | null }> } } };
}

/** Every panel of the dashboard, those inside collapsed rows included. */
export function dashboardPanels(): DashboardPanel[] {
  const dashboard = JSON.parse(readFileSync(repoPath('infra/grafana/dashboards/walnut.json'), 'utf8')) as {
    panels: GrafanaPanel[];
  };
  const flat = (panels: GrafanaPanel[]): GrafanaPanel[] => panels.flatMap((p) => [p, ...flat(p.panels ?? [])]);
  return flat(dashboard.panels)
    .filter((panel) => panel.type !== 'row')
    .map((panel) => ({
      title: panel.title ?? '(untitled)',
      queries: (panel.targets ?? []).map((target) => (target.expr ?? '').trim()),
      threshold:
        panel.fieldConfig?.defaults?.thresholds?.steps?.findLast((step) => step.value !== null)?.value ?? undefined,
    }));
}
