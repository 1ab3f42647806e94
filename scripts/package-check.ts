/**
 * The package as a user gets it (`npm test` runs this; see
 * docs/contributing.md, "The package check"):
 *
 *  1. `npm pack` (which builds dist/), then publint and @arethetypeswrong on
 *     the tarball; every relative link of README.md and docs/*.md leads to a
 *     file (and heading) the tarball holds, and every mention of a
 *     repository-only path says so;
 *  2. every code block of README.md and docs/*.md marked
 *     `<!-- package-check: name -->` runs, and only those: each app (the
 *     MongoDB quick start, the PostgreSQL one, `/metrics` on the app) gets
 *     an empty project that installs the tarball and only the peers it names
 *     (the MongoDB quick start on the `mongodb` 6.x driver, the major an app
 *     pinned by a nested 7.x broke; the PostgreSQL one without `mongodb`),
 *     is type-checked as pasted with `moduleResolution` `node16` and
 *     `bundler`, then run with requests on Node, and with the README's
 *     `Bun.serve` / `Deno.serve` line on Bun and Deno; the README's `curl`
 *     lines run against both quick starts, their outputs compared with the
 *     ones their comments quote.
 *
 * Exits non-zero on the first failure. BUN and DENO name the runtimes'
 * binaries (default: those of scripts/runtimes/package.json).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveMongoServer } from '../servers/mongo.ts';
import { freePort, resolvePostgresServer } from '../servers/postgres.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runtimes = join(root, 'scripts', 'runtimes', 'node_modules');
const bun = process.env.BUN ?? join(runtimes, '@oven', 'bun-linux-x64', 'bin', 'bun');
const deno = process.env.DENO ?? join(runtimes, '@deno', 'linux-x64-glibc', 'deno');
/** The pages whose marked code blocks run: the README and every docs page, as paths from the root. */
const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((file) => file.endsWith('.md')).sort().map((file) => `docs/${file}`)];
const pageText = new Map(pages.map((page) => [page, readFileSync(join(root, page), 'utf8')]));

/** Versions of what the consumer projects install: the ones this repository is tested with. */
function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

interface MarkedBlock {
  page: string;
  language: string;
  code: string;
}

/**
 * Every code block marked `<!-- package-check: name -->` (on the line
 * before its fence) in the README and the docs pages, by name.
 * @throws Error for a marker without a code block after it, or a name used twice.
 */
function markedBlocks(): Map<string, MarkedBlock> {
  const blocks = new Map<string, MarkedBlock>();
  for (const [page, text] of pageText) {
    const markers = [...text.matchAll(/^<!-- package-check: ([^\s]+) -->$/gm)];
    const found = [...text.matchAll(/^<!-- package-check: ([^\s]+) -->\n```(\w+)\n([\s\S]*?)\n```\n/gm)];
    if (markers.length !== found.length) throw new Error(`${page}: a package-check marker is not followed by a code block`);
    for (const [, name = '', language = '', code = ''] of found) {
      const other = blocks.get(name);
      if (other) throw new Error(`package-check: ${name} marks a block in ${other.page} and in ${page}`);
      blocks.set(name, { page, language, code: `${code}\n` });
    }
  }
  return blocks;
}

const blocks = markedBlocks();
const usedBlocks = new Set<string>();

/** The code of the block marked `name` (which must be in `language`). */
function block(name: string, language = 'ts'): string {
  const found = blocks.get(name);
  if (!found) throw new Error(`no page has a block marked package-check: ${name}`);
  if (found.language !== language) throw new Error(`package-check: ${name} (${found.page}) is a ${found.language} block, not ${language}`);
  usedBlocks.add(name);
  return found.code;
}

/** The quick start with its `serve(...)` statement (the last one) replaced by a runtime's own line. */
function onRuntime(quickStart: string, runtime: 'Bun' | 'Deno'): string {
  const line = block('serve-lines')
    .split('\n')
    .find((l) => l.startsWith(`${runtime}.serve(`));
  const at = quickStart.lastIndexOf('\nserve(');
  if (!line || at === -1) throw new Error(`cannot build the ${runtime} variant of the quick start`);
  const withoutNodeServer = quickStart.slice(0, at).replace(/^import \{ serve \} from '@hono\/node-server';\n/m, '');
  if (withoutNodeServer.includes('@hono/node-server')) throw new Error('the quick start imports @hono/node-server twice');
  return `${withoutNodeServer}\n${line}\n`;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: 'inherit', env: { ...process.env, ...env } });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) exited with ${code ?? signal}`)),
    );
  });
}

/** Runs a command and resolves to its standard output; rejects when it fails. */
function runForOutput(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}:\n${stdout}${stderr}`)),
    );
  });
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`package check failed: ${message}`);
}

/** The `name=value` of a response's Set-Cookie for `name` ('' when it clears it), or undefined. */
function cookieOf(response: Response, name: string): string | undefined {
  for (const line of response.headers.getSetCookie()) {
    const [pair = ''] = line.split(';');
    if (pair.startsWith(`${name}=`)) return pair;
  }
  return undefined;
}

/** Starts an app, waits until it answers, runs `flow`, stops it. */
async function withApp(label: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, flow: (base: string) => Promise<void>) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(command, args, { cwd, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${label}: the app exited with ${child.exitCode}:\n${output}`);
      if (await fetch(base, { method: 'HEAD' }).then(() => true, () => false)) break;
      if (Date.now() > deadline) throw new Error(`${label}: the app did not answer within 60 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await flow(base);
    console.log(`package check: ${label}: ok`);
  } catch (error) {
    console.error(output);
    throw error;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/**
 * Both quick starts' flow: an anonymous visit stores nothing, a sign-in
 * without a same-origin Origin is refused, a sign-in gets a new cookie and
 * a flash, visits are counted, a sign-out clears the cookie.
 */
async function quickStartFlow(base: string): Promise<void> {
  const first = await fetch(`${base}/`);
  check((await first.text()) === 'anonymous', 'an anonymous visit');
  check(first.headers.getSetCookie().length === 0, 'an anonymous visit sets no cookie (nothing stored)');
  const crossSite = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  check(crossSite.status === 403, `a cross-site form post is refused (got ${crossSite.status})`);
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { origin: base, 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  const signedIn = cookieOf(login, '__Host-sid');
  check(login.status === 303 && signedIn !== undefined && signedIn !== '__Host-sid=', 'sign-in sets a cookie');
  const welcome = await fetch(`${base}/`, { headers: { cookie: signedIn } });
  check((await welcome.text()) === 'Welcome! alice, visit 1', 'the flash and the first counted visit');
  const again = await fetch(`${base}/`, { headers: { cookie: signedIn } });
  check((await again.text()) === 'alice, visit 2', 'the second visit reads the stored count');
  const logout = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: signedIn, origin: base }, redirect: 'manual' });
  check(cookieOf(logout, '__Host-sid') === '__Host-sid=', 'sign-out clears the cookie');
  const after = await fetch(`${base}/`, { headers: { cookie: signedIn } });
  check((await after.text()) === 'anonymous', 'the signed-out cookie gives a fresh session');
  await curlFlow(base);
}

/**
 * The README's curl lines against the app at `base`, in an empty folder
 * (curl's cookie jar starts empty): each must succeed, and print what its
 * comment quotes, when it quotes something.
 */
async function curlFlow(base: string): Promise<void> {
  const origin = base.replace('127.0.0.1', 'localhost');
  const lines = block('quick-start-curl', 'sh').split('\n').filter((line) => line.trim() !== '');
  const dir = await mkdtemp(join(tmpdir(), 'mongostore-curl-'));
  try {
    for (const line of lines) {
      const [, command = '', expected] = /^(curl .*?)(?:\s+#\s*(?:"([^"]*)")?.*)?$/.exec(line) ?? [];
      check(command !== '', `the curl block's line is a curl command: ${line}`);
      const output = await runForOutput('bash', ['-c', command.replaceAll('http://localhost:3000', origin)], dir);
      if (expected !== undefined) check(output.trim() === expected, `${line}\n  printed ${JSON.stringify(output.trim())}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`package check: the README's ${lines.length} curl lines print what they say`);
}

/** `/metrics` on the app: a sign-in, then a scrape that shows the store's metrics and sets no cookie. */
async function metricsFlow(base: string): Promise<void> {
  const login = await fetch(`${base}/login`, { method: 'POST', headers: { origin: base }, redirect: 'manual' });
  const cookie = cookieOf(login, '__Host-sid');
  check(login.status === 303 && cookie !== undefined, 'sign-in sets a cookie');
  check((await (await fetch(`${base}/`, { headers: { cookie } })).text()) === 'alice', 'the session is stored');
  const scrape = await fetch(`${base}/metrics`);
  const text = await scrape.text();
  check(scrape.status === 200 && scrape.headers.getSetCookie().length === 0, '/metrics answers and sets no cookie');
  for (const series of [/^mongostore_session_created_total\{[^}]*\} [1-9]/m, /^mongostore_session_active\{[^}]*\} [1-9]/m, /^db_client_operation_duration_bucket\{/m]) {
    check(series.test(text), `/metrics has a sample of ${series.source}:\n${text}`);
  }
}

/** Every source map in the installed package names sources that the package contains. */
async function checkSourceMaps(installed: string): Promise<void> {
  const files = (await readdir(join(installed, 'dist'), { recursive: true })).filter((file) => file.endsWith('.map'));
  check(files.length > 0, 'the package has source maps');
  for (const file of files) {
    const map = JSON.parse(readFileSync(join(installed, 'dist', file), 'utf8')) as { sources: string[] };
    for (const source of map.sources) {
      const path = join(installed, 'dist', dirname(file), source);
      check(path.startsWith(join(installed, 'src')) && existsSync(path), `${file} names ${source}, which the package does not contain`);
    }
  }
  console.log(`package check: ${files.length} source maps, every source shipped`);
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, each space a hyphen. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** The anchors of a Markdown page's headings (code blocks left out), numbered as GitHub numbers repeats. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading = ''] of text.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const anchor = anchorOf(heading);
    let unique = anchor;
    for (let n = 1; anchors.has(unique); n++) unique = `${anchor}-${n}`;
    anchors.add(unique);
  }
  return anchors;
}

/** Says that a path is in the repository only (see docs/contributing.md). */
const repositoryOnly = /in\s+the\s+(?:source\s+)?repository,\s+not\s+(?:in\s+)?the\s+(?:npm\s+)?package/i;
/** A mention of a path the tarball does not ship. */
const repositoryPath = /`(?:examples|test|bench|scripts|servers|\.ci)\//;

/**
 * The README and the docs pages cite only what ships: each page is in the
 * tarball, each relative link leads to a file of the tarball (and to one of
 * its headings), and a paragraph that names a repository-only path says so
 * (or its page says so of every path it names, before its first section).
 */
function checkDocs(shipped: Set<string>): void {
  for (const [page, text] of pageText) {
    check(shipped.has(page), `${page} is in the package`);
    for (const [, target = ''] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? page : posix.normalize(posix.join(posix.dirname(page), path));
      check(shipped.has(file), `${page} links to ${target}, which the package does not contain`);
      if (anchor !== undefined) {
        const linked = pageText.get(file);
        check(linked !== undefined && anchorsOf(linked).has(anchor), `${page} links to ${target}, a heading ${file} does not have`);
      }
    }
    const intro = text.split(/^## /m)[0] ?? '';
    if (/this page names/i.test(intro) && repositoryOnly.test(intro)) continue;
    for (const paragraph of text.split(/\n\s*\n/)) {
      check(!repositoryPath.test(paragraph) || repositoryOnly.test(paragraph), `${page} names a repository-only path without saying so:\n${paragraph}`);
    }
  }
  console.log(`package check: ${pages.length} pages shipped, their links lead into the package, repository paths marked`);
}

interface Consumer {
  name: string;
  block: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  env: NodeJS.ProcessEnv;
  flow: (base: string) => Promise<void>;
  absent: string[];
  /** The package's entry points the app imports. */
  entryPoints: string[];
}

async function checkConsumer(work: string, tarball: string, consumer: Consumer): Promise<void> {
  const dir = join(work, consumer.name);
  await mkdir(dir);
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify(
      {
        name: `${consumer.name}-app`,
        private: true,
        type: 'module',
        dependencies: { mongostore: `file:${tarball}`, ...consumer.dependencies },
        devDependencies: consumer.devDependencies,
      },
      null,
      2,
    ),
  );
  const compilerOptions = { target: 'ES2022', strict: true, skipLibCheck: false, types: ['node'], lib: ['ES2022', 'DOM'] };
  await writeFile(
    join(dir, 'tsconfig.node16.json'),
    JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'node16', moduleResolution: 'node16', outDir: 'out' }, files: ['app.ts'] }),
  );
  await writeFile(
    join(dir, 'tsconfig.bundler.json'),
    JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'preserve', moduleResolution: 'bundler', noEmit: true }, files: ['app.ts'] }),
  );
  await writeFile(join(dir, 'app.ts'), consumer.block);
  await writeFile(join(dir, 'app-bun.ts'), onRuntime(consumer.block, 'Bun'));
  await writeFile(join(dir, 'app-deno.ts'), onRuntime(consumer.block, 'Deno'));

  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], dir);
  await checkSourceMaps(join(dir, 'node_modules', 'mongostore'));
  for (const name of consumer.absent) {
    check(!existsSync(join(dir, 'node_modules', name)), `${consumer.name}: ${name} was installed though nothing asked for it`);
  }
  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  await run(process.execPath, [tsc, '-p', 'tsconfig.node16.json'], dir);
  console.log(`package check: ${consumer.name}: type-checks with moduleResolution node16`);
  await run(process.execPath, [tsc, '-p', 'tsconfig.bundler.json'], dir);
  console.log(`package check: ${consumer.name}: type-checks with moduleResolution bundler`);
  // CommonJS: require() of each entry point this app uses (Node 20.19+ and Bun load ES modules so).
  const requires = consumer.entryPoints.map((entry) => `require(${JSON.stringify(entry)});`).join(' ');
  for (const runtime of [process.execPath, bun]) {
    await run(runtime, ['-e', `${requires} console.log('required: ${consumer.entryPoints.join(', ')}')`], dir);
  }

  const env = { ...consumer.env, SESSION_KEY: randomBytes(32).toString('base64url') };
  await withApp(`${consumer.name} on Node ${process.version}`, process.execPath, ['out/app.js'], dir, env, consumer.flow);
  await withApp(`${consumer.name} on Bun`, bun, ['app-bun.ts'], dir, env, consumer.flow);
  await withApp(
    `${consumer.name} on Deno`,
    deno,
    ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-sys', 'app-deno.ts'],
    dir,
    env,
    consumer.flow,
  );
}

// Every marked block is looked up before anything slow, so that a block
// marked to run that this check does not know fails at once.
const apps = {
  quickStartMongodb: block('quick-start-mongodb'),
  quickStartPostgres: block('quick-start-postgres'),
  metricsOnTheApp: block('metrics-on-the-app'),
};
block('serve-lines');
block('quick-start-curl', 'sh');
const unknown = [...blocks.keys()].filter((name) => !usedBlocks.has(name));
check(unknown.length === 0, `blocks marked to run that this check does not run: ${unknown.join(', ')} (add them to scripts/package-check.ts)`);
await runForOutput('curl', ['--version'], root).catch(() => {
  throw new Error('package check: curl is needed to run the README\'s curl lines (scripts/setup.sh installs it)');
});

const work = await mkdtemp(join(tmpdir(), 'mongostore-package-'));
const mongo = await resolveMongoServer();
const postgres = await resolvePostgresServer().catch(async (error: unknown) => {
  await mongo.stop();
  throw error;
});
try {
  await run('npm', ['pack', '--pack-destination', work, '--silent'], root);
  const tarball = join(work, (await readdir(work)).find((file) => file.endsWith('.tgz')) ?? 'missing.tgz');
  await run(process.execPath, [join(root, 'node_modules', 'publint', 'src', 'cli.js'), 'run', '--strict', tarball], root);
  // node16 (from ESM and from CommonJS) and bundler; node10, which knows no
  // `exports`, is ignored. attw counts a require() of an ES module as an
  // error, which it is not on the Node versions `engines` names (20.19+):
  // below, each consumer require()s its entry points for real instead.
  await run(
    process.execPath,
    [join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'), '--profile', 'node16', tarball, '--ignore-rules', 'cjs-resolves-to-esm'],
    root,
  );

  const shipped = new Set(
    (await runForOutput('tar', ['-tzf', tarball], work))
      .split('\n')
      .filter((line) => line.startsWith('package/'))
      .map((line) => line.slice('package/'.length)),
  );
  checkDocs(shipped);

  const shared = {
    hono: installedVersion('hono'),
    '@hono/node-server': installedVersion('@hono/node-server'),
  };
  const tools = { typescript: installedVersion('typescript'), '@types/node': installedVersion('@types/node') };
  const consumers: Consumer[] = [
    {
      name: 'quick-start-mongodb',
      block: apps.quickStartMongodb,
      dependencies: { ...shared, mongodb: installedVersion('mongodb6') },
      devDependencies: tools,
      env: { MONGODB_URI: mongo.uri },
      flow: quickStartFlow,
      absent: ['pg'],
      entryPoints: ['mongostore', 'mongostore/hono'],
    },
    {
      name: 'quick-start-postgres',
      block: apps.quickStartPostgres,
      dependencies: { ...shared, pg: installedVersion('pg') },
      devDependencies: { ...tools, '@types/pg': installedVersion('@types/pg') },
      env: { DATABASE_URL: postgres.uri },
      flow: quickStartFlow,
      absent: ['mongodb'],
      entryPoints: ['mongostore/postgres', 'mongostore/hono'],
    },
    {
      name: 'metrics-on-the-app',
      block: apps.metricsOnTheApp,
      dependencies: {
        ...shared,
        mongodb: installedVersion('mongodb'),
        '@opentelemetry/api': installedVersion('@opentelemetry/api'),
        '@opentelemetry/sdk-metrics': installedVersion('@opentelemetry/sdk-metrics'),
        '@opentelemetry/exporter-prometheus': installedVersion('@opentelemetry/exporter-prometheus'),
      },
      devDependencies: tools,
      env: { MONGODB_URI: mongo.uri },
      flow: metricsFlow,
      absent: ['pg'],
      entryPoints: ['mongostore', 'mongostore/hono'],
    },
  ];
  for (const consumer of consumers) await checkConsumer(work, tarball, consumer);
  console.log('package check: all good');
} finally {
  await Promise.all([mongo.stop(), postgres.stop()]);
  await rm(work, { recursive: true, force: true });
}
