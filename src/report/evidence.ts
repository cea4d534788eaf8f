/** Evidence values as short text, shared by the terminal report (cli/lab-text.ts) and the HTML one. */

/**
 * The fields shown when a measurement is nested inside the evidence (the full object is in
 * --json): the outcome, the errno, the TIME_WAIT counts and the costs.
 */
const KEY_FIELDS = [
  'where',
  'variant',
  'twReuse',
  'tcpFinTimeout',
  'options',
  'failedAfter',
  'firstError',
  'attempted',
  'succeeded',
  'clientTimeWait',
  'serverTimeWait',
  'clientRstsSent',
  'serverEstabResets',
  'serverAppResets',
  'payloadsIncomplete',
  'connectionsPerSecond',
  'localPortsUsed',
  'retry',
  'observedLifetimeMs',
  'timerAtFirstLookMs',
  'firstLookAfterMs',
  'firstListen',
  'secondListen',
  'acceptedByFirst',
  'acceptedBySecond',
];

/** A nested measurement: its key fields only, when it has any. */
function keyFieldsOf(value: Record<string, unknown>): Record<string, unknown> {
  const keys = KEY_FIELDS.filter((k) => k in value);
  return keys.length === 0 ? value : Object.fromEntries(keys.map((k) => [k, value[k]]));
}

/** A value of the evidence as short text: numbers and strings as they are, objects by their key fields. */
export function formatValue(value: unknown, nested = false): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(2);
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) {
    return `[${value.map((v) => formatValue(v)).join(', ')}]`;
  }
  if (typeof value === 'object' && !Array.isArray(value)) {
    const shown = nested ? keyFieldsOf(value as Record<string, unknown>) : (value as Record<string, unknown>);
    return `{${Object.entries(shown)
      .map(([k, v]) => `${k}: ${formatValue(v, true)}`)
      .join(', ')}}`;
  }
  return `[${(value as unknown[]).map((v) => formatValue(v, true)).join('; ')}]`;
}
