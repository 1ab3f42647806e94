/**
 * Renders the benches' main comparisons as SVG charts (vega-lite, compiled
 * and rendered by vega's headless SVG renderer), next to their results:
 *
 *  - results/library-cost.svg from results/library-cost.json (CPU µs per
 *    request over the bare framework, by scenario, contender and runtime;
 *    a contender appears in the scenarios it ran);
 *  - results/scale.svg from results/scale.json (median ms per operation, by
 *    backend and size, on a log scale).
 *
 *   node --import tsx bench/charts.ts        (after library-cost.ts and scale.ts)
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

const results = process.env.BENCH_OUT ?? join(import.meta.dirname, 'results');

async function render(spec: vegaLite.TopLevelSpec, file: string): Promise<void> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  await writeFile(join(results, file), await view.toSVG());
  view.finalize();
  console.log(`charts: wrote ${join(results, file)}`);
}

const font = { config: { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 280 }, legend: { labelFontSize: 11, labelLimit: 280 } } };

if (existsSync(join(results, 'library-cost.json'))) {
  const { rows } = JSON.parse(await readFile(join(results, 'library-cost.json'), 'utf8')) as {
    rows: { runtime: string; contender: string; scenario: string; overBare: number }[];
  };
  // The scenario names of bench/library-cost.ts ('forged' and 'cold' since issue 22; older results lack them).
  const scenario: Record<string, string> = {
    new: 'new session',
    read: 'returning, read-only',
    cold: 'returning, cold',
    incr: 'read-modify-write',
    forged: 'forged cookie',
  };
  await render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Session library cost: CPU µs per request over the bare framework (lower is better)',
      data: { values: rows.map((row) => ({ ...row, scenario: scenario[row.scenario] ?? row.scenario, overBare: Math.max(0, row.overBare) })) },
      facet: { field: 'scenario', type: 'nominal', title: null, sort: Object.values(scenario) },
      columns: 3,
      spec: {
        width: 220,
        height: 180,
        mark: 'bar',
        encoding: {
          y: { field: 'contender', type: 'nominal', title: null, axis: { labelLimit: 260 } },
          yOffset: { field: 'runtime', type: 'nominal' },
          x: { field: 'overBare', type: 'quantitative', title: 'µs per request' },
          color: { field: 'runtime', type: 'nominal', title: 'runtime' },
          tooltip: [{ field: 'overBare', type: 'quantitative', format: '.1f' }],
        },
      },
      resolve: { scale: { x: 'independent' } },
      ...font,
    },
    'library-cost.svg',
  );
}

if (existsSync(join(results, 'scale.json'))) {
  const { rows } = JSON.parse(await readFile(join(results, 'scale.json'), 'utf8')) as {
    rows: { backend: string; sessions: number; operation: string; medianMs: number }[];
  };
  await render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Store operations at scale: median ms, log scale (lower is better)',
      data: {
        values: rows.map((row) => ({
          ...row,
          where: `${row.backend.startsWith('PostgreSQL') ? 'PostgreSQL' : 'FerretDB (SQLite)'}, ${row.sessions.toLocaleString('en-US')}`,
          medianMs: Math.max(0.01, row.medianMs),
        })),
      },
      width: 420,
      height: { step: 14 },
      mark: 'bar',
      encoding: {
        y: { field: 'operation', type: 'nominal', title: null, axis: { labelLimit: 360 } },
        yOffset: { field: 'where', type: 'nominal' },
        // A log scale has no zero: the bars start at 0.1 ms.
        x: { field: 'medianMs', type: 'quantitative', scale: { type: 'log', domainMin: 0.1 }, title: 'median ms' },
        x2: { datum: 0.1 },
        color: { field: 'where', type: 'nominal', title: 'backend, sessions' },
      },
      ...font,
    },
    'scale.svg',
  );
}
