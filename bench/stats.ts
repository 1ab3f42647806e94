/** What the in-process benches share: order statistics and CPU time per call. */

/** The value at fraction `q` (0 to 1) of the sorted values; NaN for none. */
export function quantile(values: number[], q: number): number {
  return [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) * q)] ?? Number.NaN;
}

/** The lower median. */
export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** Runs `one` `count` times in a row; the process's user + system CPU µs per call. */
export async function cpuPerRequest(count: number, one: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await one();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}
