/**
 * Finds a PostgreSQL server for the tests and the benchmarks: `PG_URI` when
 * set; else a throwaway cluster from Debian's `postgresql` packages, created
 * in a temporary directory, listening on a free loopback port with trust
 * authentication, and removed when stopped. As root the cluster runs as the
 * `postgres` user (PostgreSQL refuses to run as root).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PostgresTestServer {
  readonly uri: string;
  readonly description: string;
  stop(): Promise<void>;
}

export async function resolvePostgresServer(): Promise<PostgresTestServer> {
  const envUri = process.env.PG_URI;
  if (envUri) {
    return { uri: envUri, description: `PG_URI, PostgreSQL ${await serverVersion(envUri)}`, stop: async () => {} };
  }
  const bin = postgresBinDir();
  if (!bin) {
    throw new Error(
      'No PostgreSQL for the tests: set PG_URI=postgres://..., or install Debian\'s postgresql package ' +
        '(npm test does, through scripts/setup.sh) so a throwaway cluster can be started.',
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'mongostore-pg-'));
  // As root, run as the postgres user; spawned directly (not through
  // runuser or su), so that stop() signals postgres itself.
  const user: { uid?: number; gid?: number } = process.getuid?.() === 0 ? postgresUser() : {};
  if (user.uid !== undefined && user.gid !== undefined) {
    chownSync(dir, user.uid, user.gid);
    chmodSync(dir, 0o700);
  }
  const data = join(dir, 'data');
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    ...user,
    cwd: dir,
    stdio: 'ignore',
  });
  const port = await freePort();
  const postgres = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    { ...user, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  postgres.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const uri = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await waitUntilReady(uri, postgres);
  } catch (error) {
    postgres.kill('SIGKILL');
    throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${log}`);
  }
  return {
    uri,
    description: `PostgreSQL ${await serverVersion(uri)} (throwaway cluster) at 127.0.0.1:${port}`,
    stop: async () => {
      if (postgres.exitCode === null && postgres.signalCode === null) {
        const exited = new Promise((resolve) => postgres.once('exit', resolve));
        postgres.kill('SIGINT'); // fast shutdown
        const timer = setTimeout(() => postgres.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(uri: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}`);
    const client = new pg.Client({ connectionString: uri });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => {});
    }
  }
}

async function serverVersion(uri: string): Promise<string> {
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  try {
    const result = await client.query<{ server_version: string }>('SHOW server_version');
    return result.rows[0]?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
}
