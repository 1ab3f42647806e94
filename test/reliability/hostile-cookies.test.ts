/**
 * At least 10,000 hostile cookie values: `get` never rejects, only fresh
 * sessions come back, and not one database command is sent.
 */
import { randomBytes, randomInt } from 'node:crypto';
import * as iron from 'iron-webcrypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoStore } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(async () => {
  await t.close();
});

const key = { authentication: randomKey(), encryption: randomKey() };

/** Printable cookie-octets (RFC 6265) and a few separators browsers send anyway. */
const alphabet = "!#$%&'()*+-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~ ,\"\\";

function randomText(length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[randomInt(alphabet.length)];
  return text;
}

function mutate(token: string, part: number): string {
  const parts = token.split('*');
  const target = parts[part] ?? '';
  const at = target.length === 0 ? 0 : randomInt(target.length);
  const replacement = target[at] === 'A' ? 'B' : 'A';
  parts[part] = target.slice(0, at) + replacement + target.slice(at + 1);
  return parts.join('*');
}

it('gives fresh sessions, without a database command, for 10,000+ hostile cookies', async () => {
  const store = new MongoStore(t.db, { keyPairs: [key], collection: 'hostile' });
  await store.init();
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values.who = 'victim';
  const headers = new Headers();
  await store.save(req, headers, session);
  const valid = onlyCookie(headers).value;
  const passwordId = valid.split('*')[1] ?? '';

  const cases: { kind: string; header: [string, string][] }[] = [];
  const add = (kind: string, value: string, name = 'sid') => cases.push({ kind, header: [['cookie', `${name}=${value}`]] });

  for (let i = 0; i < 2000; i++) add('random bytes (base64)', randomBytes(randomInt(1, 400)).toString('base64'));
  for (let i = 0; i < 2000; i++) add('random cookie text', randomText(randomInt(1, 300)));
  for (let i = 0; i < 1000; i++) add('random percent-encoded bytes', encodeURIComponent(randomBytes(randomInt(1, 200)).toString('latin1')));
  for (let i = 0; i < 1000; i++) add('valid token truncated', valid.slice(0, randomInt(valid.length)));
  for (let i = 0; i < 2000; i++) add('one character changed', mutate(valid, i % 8));
  const foreign = { id: passwordId, integrity: randomKey(), encryption: randomKey() };
  const genuine = { id: passwordId, integrity: key.authentication, encryption: key.encryption };
  for (let i = 0; i < 300; i++) {
    const id = randomBytes(32).toString('base64url');
    add('sealed with an unknown key', await iron.seal({ n: 'sid', i: id }, { ...foreign, id: `k${i}` }, iron.defaults));
    add('unknown key, known key id', await iron.seal({ n: 'sid', i: id }, foreign, iron.defaults));
    add(
      'valid key, expired seal',
      await iron.seal({ n: 'sid', i: session.id }, genuine, { ...iron.defaults, ttl: 1000, localtimeOffsetMsec: -120_000 }),
    );
  }
  for (let i = 0; i < 500; i++) add('valid token under another name', valid, `sid${i}`);
  for (let i = 0; i < 200; i++) add('100 KB value', 'A'.repeat(100 * 1024));
  for (let i = 0; i < 300; i++) add('non-ASCII (latin1)', String.fromCharCode(...Array.from({ length: 50 }, () => randomInt(0x80, 0x100))));
  for (let i = 0; i < 300; i++) add('non-ASCII (percent-encoded UTF-8)', encodeURIComponent(`Fe26.2*${'ü😀'.repeat(randomInt(1, 20))}`));
  for (let i = 0; i < 300; i++) {
    const parts = valid.split('*');
    const count = [1, 2, 7, 9, 12][i % 5] as number;
    add('Fe26.2 with the wrong number of parts', Array.from({ length: count }, (_, j) => parts[j % parts.length]).join('*'));
  }
  for (let i = 0; i < 300; i++) {
    cases.push({
      kind: 'duplicated cookie headers',
      header: [
        ['cookie', `sid=${mutate(valid, 7)}`],
        ['cookie', `sid=${valid}`],
      ],
    });
    cases.push({ kind: 'duplicated names in one header', header: [['cookie', `sid=${randomText(30)}; sid=${valid}`]] });
  }

  let rejected = 0;
  let notFresh = 0;
  const reasons: Record<string, number> = {};
  t.commands.reset();
  for (const { kind, header } of cases) {
    const request = new Request('https://app.example/', { headers: header });
    try {
      const loaded = await store.get(request, 'sid');
      if (!loaded.isNew || loaded.id !== '' || Object.keys(loaded.values).length > 0) notFresh++;
      reasons[loaded.error ?? 'none'] = (reasons[loaded.error ?? 'none'] ?? 0) + 1;
    } catch (error) {
      rejected++;
      console.error(kind, error);
    }
  }
  const commands = t.commands.names();
  console.log(
    `hostile cookies: ${cases.length} tried, ${rejected} rejected, ${notFresh} not fresh, ` +
      `${commands.length} database commands; reasons ${JSON.stringify(reasons)}`,
  );
  expect(cases.length).toBeGreaterThanOrEqual(10_000);
  expect({ rejected, notFresh, commands }).toEqual({ rejected: 0, notFresh: 0, commands: [] });
  // The real cookie still works afterwards.
  expect((await store.get(requestWith({ sid: valid }), 'sid')).values.who).toBe('victim');
});
