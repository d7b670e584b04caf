export function tiersChosen(execArgv: readonly string[], nodeOptions: string): boolean;
export function tierFlags(on: boolean): string[];
