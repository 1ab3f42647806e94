/**
 * The session and token tables' schema: created, or completed from an
 * older version, once per store, taking no lock when nothing is missing.
 */
import type { Pool } from 'pg';
import { runOperation } from '../operations.ts';

/**
 * Creates what is missing of the table, its columns and its indexes, and
 * nothing else: DDL takes strong locks (ALTER TABLE an ACCESS EXCLUSIVE
 * one, even with IF NOT EXISTS), so a store starting up against a complete
 * schema only reads the catalog.
 */
export async function createSchema(pool: Pool, table: TableName, indexOwners: boolean): Promise<void> {
  await runOperation('create schema', undefined, async () => {}, async () => {
    try {
      await applyMissingSchema(pool, table, indexOwners);
    } catch (error) {
      // Two processes creating the same table at once can collide in the
      // catalog; the second attempt then finds it there.
      const code = (error as { code?: unknown }).code;
      if (code !== '23505' && code !== '42P07') throw error;
      await applyMissingSchema(pool, table, indexOwners);
    }
  });
}

/** A table: its plain name (index names start with it) and its quoted, possibly schema-qualified, reference. */
export interface TableName {
  name: string;
  quoted: string;
}

async function applyMissingSchema(pool: Pool, { name, quoted: table }: TableName, indexOwners: boolean): Promise<void> {
  const { rows } = await pool.query<{ columns: string[] | null; indexes: string[] | null }>(
    `SELECT (SELECT array_agg(attname::text) FROM pg_attribute
              WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped) AS columns,
            (SELECT array_agg(c.relname::text) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = to_regclass($1)) AS indexes`,
    [table],
  );
  const columns = new Set(rows[0]?.columns ?? []);
  const indexes = new Set(rows[0]?.indexes ?? []);
  const statements: string[] = [];
  if (columns.size === 0) {
    statements.push(`CREATE TABLE IF NOT EXISTS ${table} (
       token TEXT PRIMARY KEY,
       data BYTEA NOT NULL,
       expiry TIMESTAMPTZ NOT NULL,
       "user" TEXT,
       provider TEXT,
       created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
       updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
       ${addedColumns.map(([name, type]) => `${name} ${type}`).join(',\n         ')})`);
  } else {
    // A table of 0.1.0: nullable or constant-default columns, so PostgreSQL rewrites nothing.
    const missing = addedColumns.filter(([name]) => !columns.has(name));
    if (missing.length > 0) {
      statements.push(`ALTER TABLE ${table} ${missing.map(([name, type]) => `ADD COLUMN IF NOT EXISTS ${name} ${type}`).join(', ')}`);
    }
  }
  const wanted: [string, string][] = [[`${name}_expiry_idx`, '(expiry)']];
  if (indexOwners) wanted.push([`${name}_owner_idx`, '("user", provider)']);
  for (const [name, key] of wanted) {
    if (!indexes.has(name)) statements.push(`CREATE INDEX IF NOT EXISTS "${name}" ON ${table} ${key}`);
  }
  // One round trip (the simple query protocol runs several statements).
  if (statements.length > 0) await pool.query(statements.join(';\n'));
}

/** Columns added after 0.1.0, with their types. */
const addedColumns: readonly [string, string][] = [
  ['max_age', 'INTEGER'],
  ['persistent', 'BOOLEAN'],
  ['replaced', 'BOOLEAN NOT NULL DEFAULT false'],
  ['handle', 'TEXT'],
  ['user_agent', 'TEXT'],
  ['device', 'TEXT'],
  ['entries', 'JSONB'],
  ['flashes', 'JSONB'],
  ['epoch', 'INTEGER NOT NULL DEFAULT 0'],
  ['replaced_by', 'TEXT'],
  ['signed_in_at', 'TIMESTAMPTZ'],
];
