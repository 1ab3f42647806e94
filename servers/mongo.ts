/**
 * Finds a real server that speaks the MongoDB wire protocol, for the tests,
 * the demo app and the benchmarks. In order:
 *
 *  1. `MONGODB_URI`, when set: any MongoDB or compatible server, used as is.
 *  2. mongodb-memory-server: `MONGOMS_SYSTEM_BINARY`, a cached mongod, or a
 *     download (refused at once on machines that reach only package registries).
 *  3. FerretDB (SQLite backend), embedded in the small Go program under
 *     `servers/ferretdb/`, built once with the Go toolchain and cached in `.cache/`.
 *
 * Otherwise it throws one error that names all three ways.
 *
 * Run as a script (`node --import tsx servers/mongo.ts build`) it only
 * builds the FerretDB launcher, which is what `scripts/setup.sh` (part of `npm test`) does first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';

/** A running server and how to stop it. */
export interface MongoTestServer {
  /** Connection string for the driver. */
  readonly uri: string;
  /** One human line: which server, which version, where. */
  readonly description: string;
  /** Stops the server if this module started it; a no-op for `MONGODB_URI`. */
  stop(): Promise<void>;
}

/** A FerretDB process this module started, with its data directory. */
export interface FerretDBServer extends MongoTestServer {
  readonly dataDir: string;
  /** `host:port` the server listens on; pass it back to restart on the same address. */
  readonly address: string;
}

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const launcherSource = join(projectRoot, 'servers', 'ferretdb');
const launcherCache = join(projectRoot, '.cache', 'ferretdb');

/** Resolves a server in the documented order; throws when none can be had. */
export async function resolveMongoServer(): Promise<MongoTestServer> {
  const envUri = process.env.MONGODB_URI;
  if (envUri) return fromEnvironment(envUri);

  const failures: string[] = [];
  try {
    return await startMemoryServer();
  } catch (error) {
    failures.push(`mongodb-memory-server: ${firstLine(error)}`);
  }
  try {
    const ferret = await startFerretDB();
    // One line says why there is no real mongod, not a stack trace.
    return { ...ferret, description: `${ferret.description} (no mongod: ${failures[0]})` };
  } catch (error) {
    failures.push(`FerretDB: ${firstLine(error)}`);
  }
  throw new Error(
    [
      'No MongoDB-compatible server (for the demo, the tests or the bench). Provide one of:',
      '  1. MONGODB_URI=mongodb://... pointing at a running MongoDB (or compatible) server;',
      '  2. a mongod for mongodb-memory-server (MONGOMS_SYSTEM_BINARY=/path/to/mongod, or network access to download one);',
      '  3. the Go toolchain (`go` on PATH) so that the embedded FerretDB in servers/ferretdb/ can be built.',
      'What was tried:',
      ...failures.map((f) => `  - ${f}`),
    ].join('\n'),
  );
}

async function fromEnvironment(uri: string): Promise<MongoTestServer> {
  try {
    const version = await serverVersion(uri);
    return {
      uri,
      description: `MONGODB_URI, server version ${version} at ${redact(uri)}`,
      stop: async () => {},
    };
  } catch (error) {
    throw new Error(`MONGODB_URI is set but the server did not answer: ${firstLine(error)}`, {
      cause: error,
    });
  }
}

async function serverVersion(uri: string): Promise<string> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    return String(info.version);
  } finally {
    await client.close();
  }
}

async function startMemoryServer(): Promise<MongoTestServer> {
  // A download that is refused should fail at once, not after three retries.
  process.env.MONGOMS_MAX_RETRIES ??= '0';
  const { MongoBinary, MongoMemoryServer } = await import('mongodb-memory-server');
  // Resolving the binary first fails quietly; MongoMemoryServer.create
  // would print a stack trace of the refused download before rethrowing.
  const systemBinary = await MongoBinary.getPath();
  const server = await MongoMemoryServer.create({ binary: { systemBinary } });
  const uri = server.getUri();
  return {
    uri,
    description: `mongodb-memory-server, mongod ${await serverVersion(uri)} at ${uri}`,
    stop: async () => {
      await server.stop();
    },
  };
}

/**
 * Builds the FerretDB launcher when no binary exists for the current sources,
 * and returns its path. The binary's name carries a hash of the Go sources, so
 * editing them triggers a rebuild and an unchanged tree reuses the binary.
 */
export async function ensureFerretDBBinary(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['main.go', 'go.mod', 'go.sum']) {
    hash.update(await readFile(join(launcherSource, file)));
  }
  const binary = join(launcherCache, `ferretdb-launcher-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(binary)) return binary;

  await mkdir(launcherCache, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  process.stderr.write('Building the FerretDB test server (once per source change)...\n');
  await run('go', ['build', '-trimpath', '-o', partial, '.'], launcherSource);
  await rename(partial, binary);
  return binary;
}

/**
 * Starts FerretDB on a data directory (a fresh temporary one by default) and
 * an address (a free loopback port by default). Restarting with the same
 * `dataDir` and `address` brings the same data back on the same URI.
 */
export async function startFerretDB(
  options: { dataDir?: string; address?: string } = {},
): Promise<FerretDBServer> {
  const binary = await ensureFerretDBBinary();
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'mongostore-ferretdb-')));
  const child = spawn(binary, ['-dir', dataDir, '-listen', options.address ?? '127.0.0.1:0'], {
    // stdin stays open as a lifeline: the launcher exits when it closes.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const { uri, version } = await readReadyLine(child);
  const address = new URL(uri).host;
  return {
    uri,
    address,
    dataDir,
    description: `FerretDB ${version} (SQLite) at ${uri}`,
    stop: async () => {
      await stopChild(child);
      if (ownsDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function readReadyLine(child: ChildProcess): Promise<{ uri: string; version: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('FerretDB did not report ready within 30 s'));
    }, 30_000);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const [word, uri, version] = line.split(' ');
      if (word === 'ready' && uri) resolve({ uri, version: version ?? 'unknown' });
      else reject(new Error(`unexpected output from the FerretDB launcher: ${line}`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the FerretDB launcher exited with code ${code} before it was ready`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`)),
    );
  });
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? message).replace(/,? *Details: *$/, '');
}

function redact(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'build') {
  console.log(await ensureFerretDBBinary());
}
