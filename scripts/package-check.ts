/**
 * The package as a user gets it (`npm test` runs this; see README,
 * "Contributing"):
 *
 *  1. `npm pack` (which builds dist/), then publint and @arethetypeswrong on
 *     the tarball;
 *  2. for each of the README's quick starts (MongoDB, PostgreSQL): an empty
 *     project that installs the tarball and only the peers that quick start
 *     names (the MongoDB one on the `mongodb` 6.x driver, the major an app
 *     pinned by a nested 7.x broke; the PostgreSQL one without `mongodb`),
 *     the README block as pasted type-checked with `moduleResolution`
 *     `node16` and `bundler`, then run with requests on Node, and with the
 *     README's `Bun.serve` / `Deno.serve` line on Bun and Deno.
 *
 * Exits non-zero on the first failure. BUN and DENO name the runtimes'
 * binaries (default: those of scripts/runtimes/package.json).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveMongoServer } from '../servers/mongo.ts';
import { freePort, resolvePostgresServer } from '../servers/postgres.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runtimes = join(root, 'scripts', 'runtimes', 'node_modules');
const bun = process.env.BUN ?? join(runtimes, '@oven', 'bun-linux-x64', 'bin', 'bun');
const deno = process.env.DENO ?? join(runtimes, '@deno', 'linux-x64-glibc', 'deno');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** Versions of what the consumer projects install: the ones this repository is tested with. */
function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The ```ts block after `<!-- package-check: name -->` in the README. */
function readmeBlock(name: string): string {
  const match = new RegExp(`<!-- package-check: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)\\n\`\`\``).exec(readme);
  if (!match?.[1]) throw new Error(`README.md has no block marked package-check: ${name}`);
  return `${match[1]}\n`;
}

/** The quick start with its `serve(...)` statement (the last one) replaced by a runtime's own line. */
function onRuntime(quickStart: string, runtime: 'Bun' | 'Deno'): string {
  const line = readmeBlock('serve-lines')
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

/** The MongoDB quick start's flow: visits counted, sign-in with a new id and a flash, sign-out. */
async function mongoFlow(base: string): Promise<void> {
  const first = await fetch(`${base}/`);
  const anonymous = cookieOf(first, '__Host-sid');
  check((await first.text()) === 'anonymous, visit 1' && anonymous !== undefined, 'first visit');
  const second = await fetch(`${base}/`, { headers: { cookie: anonymous } });
  check((await second.text()) === 'anonymous, visit 2', 'second visit reads the stored count');
  const crossSite = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { cookie: anonymous, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  check(crossSite.status === 403, `a cross-site form post is refused (got ${crossSite.status})`);
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { cookie: anonymous, origin: base, 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  const signedIn = cookieOf(login, '__Host-sid');
  check(login.status === 303 && signedIn !== undefined && signedIn !== anonymous, 'sign-in sets a new cookie');
  const welcome = await fetch(`${base}/`, { headers: { cookie: signedIn } });
  check((await welcome.text()) === 'Welcome! alice, visit 3', 'the flash and the values carry over the new id');
  const old = await fetch(`${base}/`, { headers: { cookie: anonymous } });
  check(!(await old.text()).includes('alice'), 'the pre-sign-in cookie does not open the signed-in session');
  const logout = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: signedIn, origin: base }, redirect: 'manual' });
  check(cookieOf(logout, '__Host-sid') === '__Host-sid=', 'sign-out clears the cookie');
  const after = await fetch(`${base}/`, { headers: { cookie: signedIn } });
  check((await after.text()) === 'anonymous, visit 1', 'the signed-out cookie gives a fresh session');
}

/** The PostgreSQL quick start's flow: visits counted across requests. */
async function postgresFlow(base: string): Promise<void> {
  const first = await fetch(`${base}/`);
  const cookie = cookieOf(first, '__Host-sid');
  check((await first.text()) === 'visit 1' && cookie !== undefined, 'first visit');
  const second = await fetch(`${base}/`, { headers: { cookie } });
  check((await second.text()) === 'visit 2', 'second visit reads the stored count');
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

  const shared = {
    hono: installedVersion('hono'),
    '@hono/node-server': installedVersion('@hono/node-server'),
  };
  const tools = { typescript: installedVersion('typescript'), '@types/node': installedVersion('@types/node') };
  await checkConsumer(work, tarball, {
    name: 'quick-start-mongodb',
    block: readmeBlock('quick-start-mongodb'),
    dependencies: { ...shared, mongodb: installedVersion('mongodb6') },
    devDependencies: tools,
    env: { MONGODB_URI: mongo.uri },
    flow: mongoFlow,
    absent: ['pg'],
    entryPoints: ['mongostore', 'mongostore/hono'],
  });
  await checkConsumer(work, tarball, {
    name: 'quick-start-postgres',
    block: readmeBlock('quick-start-postgres'),
    dependencies: { ...shared, pg: installedVersion('pg') },
    devDependencies: { ...tools, '@types/pg': installedVersion('@types/pg') },
    env: { DATABASE_URL: postgres.uri },
    flow: postgresFlow,
    absent: ['mongodb'],
    entryPoints: ['mongostore/postgres', 'mongostore/hono'],
  });
  console.log('package check: all good');
} finally {
  await Promise.all([mongo.stop(), postgres.stop()]);
  await rm(work, { recursive: true, force: true });
}
