/**
 * A model-based test of the session lifecycle (fast-check's `fc.commands`
 * with `fc.asyncModelRun`), on both backends, against a small reference model.
 *
 * Browsers ("clients") hold cookies; requests load a session and save it, at
 * once or later ("in flight": loaded before other commands, saved after
 * them); forced logouts, expiry and key rotation happen in between. After
 * every command the real store must agree with the model:
 * - the live records are exactly the model's live sessions (so no signed-out
 *   or expired session is live under any id);
 * - `getActiveSessionsCount()` is the model's count;
 * - each client's cookie loads the model's values, or a fresh session when
 *   the model says it leads nowhere.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair, SaveOutcome, Session } from '../src/index.ts';
import type { SessionStore } from '../src/session-store.ts';
import { type Backend, backends, type RawPlace } from './support/backends.ts';
import { randomKey, requestWith, sentCookies } from './support/http.ts';

type Values = Record<string, unknown>;
const cookieName = 'sid';
const users = ['alice', 'bob'] as const;
const provider = 'password';
const clientCount = 2;
const slotCount = 2;

/** One session as the model sees it: live, replaced by a regeneration (its id a short-lived tombstone), or dead. */
interface ModelSession {
  values: Values;
  state: 'live' | 'replaced' | 'dead';
  /** The id the real store gave it (the model needs it to compare records). */
  realId: string;
}

/** One browser: the cookie it holds, which session and which key generation it names. */
interface ModelClient {
  cookie: string | undefined;
  session: ModelSession | undefined;
  keyGeneration: number;
}

/** A request that has loaded its session and not saved it yet. */
interface Pending {
  client: number;
  /** The live session it loaded, or undefined for a fresh one. */
  session: ModelSession | undefined;
  values: Values;
  /** Why it is fresh: no cookie, a cookie that leads nowhere (cleared on save), or one whose session was regenerated. */
  fresh: 'no-cookie' | 'dead-cookie' | 'replaced' | undefined;
  /** The client's cookie was sealed under an older pair: a save re-seals it. */
  reseal: boolean;
}

interface Model {
  sessions: ModelSession[];
  clients: ModelClient[];
  pending: (Pending | undefined)[];
  /** Key generations in the store's list, the first seals. */
  keys: number[];
  nextKey: number;
}

interface Real {
  backend: Backend;
  place: string;
  raw: RawPlace;
  store: SessionStore<Values>;
  keyPairs: Map<number, KeyPair>;
  pending: ({ req: Request; session: Session<Values> } | undefined)[];
}

/** What a request does with the session it loaded. */
type Action =
  | { kind: 'change'; key: string; value: number }
  | { kind: 'keep' }
  | { kind: 'sign-in'; user: string }
  | { kind: 'sign-out' };

/** The session the client's cookie opens, if its key is still in the list. */
function unsealable(model: Model, client: ModelClient): ModelSession | undefined {
  return client.cookie !== undefined && model.keys.includes(client.keyGeneration) ? client.session : undefined;
}

function reachable(model: Model, client: ModelClient): ModelSession | undefined {
  const session = unsealable(model, client);
  return session?.state === 'live' ? session : undefined;
}

function freshReason(model: Model, client: ModelClient): Pending['fresh'] {
  if (client.cookie === undefined) return 'no-cookie';
  return unsealable(model, client)?.state === 'replaced' ? 'replaced' : 'dead-cookie';
}

/** Loads the client's session into a slot: model and real side. */
async function load(model: Model, real: Real, client: number, slot: number): Promise<void> {
  const modelClient = model.clients[client] as ModelClient;
  const expected = reachable(model, modelClient);
  const req = requestWith(modelClient.cookie === undefined ? {} : { [cookieName]: modelClient.cookie });
  const session = await real.store.get(req, cookieName);
  expect(session.isNew).toBe(expected === undefined);
  expect(session.values).toEqual(expected?.values ?? {});
  const fresh = expected === undefined ? freshReason(model, modelClient) : undefined;
  if (fresh === 'replaced') expect(session.error).toBe('replaced');
  model.pending[slot] = {
    client,
    session: expected,
    values: structuredClone(expected?.values ?? {}),
    fresh,
    reseal: expected !== undefined && modelClient.keyGeneration !== model.keys[0],
  };
  real.pending[slot] = { req, session };
}

/** Applies `action` to the loaded session, saves it, and checks the outcome against the model's. */
async function finish(model: Model, real: Real, slot: number, action: Action): Promise<void> {
  const pending = model.pending[slot] as Pending;
  const { req, session } = real.pending[slot] as { req: Request; session: Session<Values> };
  model.pending[slot] = undefined;
  real.pending[slot] = undefined;
  const client = model.clients[pending.client] as ModelClient;

  const values = structuredClone(pending.values);
  if (action.kind === 'change') {
    values[action.key] = action.value;
    session.values[action.key] = action.value;
  } else if (action.kind === 'sign-in') {
    session.regenerate();
    Object.assign(values, { user: action.user, provider });
    Object.assign(session.values, { user: action.user, provider });
  } else if (action.kind === 'sign-out') {
    session.destroy();
  }
  const headers = new Headers();
  const outcome = await real.store.save(req, headers, session);
  const expected = expectedOutcome(pending, action, values);
  expect(outcome).toBe(expected.outcome);
  const sent = sentCookies(headers);
  expect(sent.length).toBe(expected.cookie === 'none' ? 0 : 1);
  const cookie = sent[0]?.value;

  if (expected.outcome === 'created') {
    // A regeneration carries over what parallel requests stored since this one loaded.
    const merged = pending.session === undefined ? values : mergeModel(pending.values, values, pending.session.values);
    const created: ModelSession = { values: merged, state: 'live', realId: session.id };
    if (pending.session !== undefined) pending.session.state = 'replaced';
    model.sessions.push(created);
    Object.assign(client, { cookie, session: created, keyGeneration: model.keys[0] });
    return;
  }
  if (expected.outcome === 'updated') {
    const target = pending.session as ModelSession;
    target.values = mergeModel(pending.values, values, target.values);
  }
  if (expected.outcome === 'deleted' || expected.outcome === 'expired') {
    if (pending.session !== undefined) pending.session.state = 'dead';
  }
  if (expected.cookie === 'clear') {
    expect(cookie).toBe('');
    Object.assign(client, { cookie: undefined, session: undefined });
  } else if (expected.cookie === 'new') {
    // A re-seal under the current pair of the id the request loaded.
    Object.assign(client, { cookie, session: pending.session, keyGeneration: model.keys[0] });
  }
}

/**
 * The merge rule: per top-level key, a key this request changed (or removed)
 * since it loaded `base` takes its value; every other key the stored one;
 * the owner pair moves as one; a change of an existing owner takes ours whole.
 */
function mergeModel(base: Values, ours: Values, theirs: Values): Values {
  const owner = ['user', 'provider'];
  const ownerChanged = owner.some((key) => ours[key] !== base[key]);
  // A sign-in as someone else (the session had an owner) takes nothing from parallel writes.
  if (ownerChanged && owner.some((key) => base[key] !== undefined)) return ours;
  const merged: Values = {};
  for (const key of new Set([...Object.keys(theirs), ...Object.keys(ours), ...Object.keys(base)])) {
    const changedHere = owner.includes(key) ? ownerChanged : JSON.stringify(ours[key]) !== JSON.stringify(base[key]);
    const source = changedHere ? ours : theirs;
    if (Object.hasOwn(source, key)) merged[key] = source[key];
  }
  return merged;
}

/** What a save resolves and which cookie it sends, by the model. */
function expectedOutcome(pending: Pending, action: Action, values: Values): { outcome: SaveOutcome; cookie: 'new' | 'clear' | 'none' } {
  const loaded = pending.session;
  if (action.kind === 'sign-out') return { outcome: 'deleted', cookie: 'clear' };
  if (pending.fresh === 'replaced') return { outcome: 'superseded', cookie: 'none' };
  if (loaded === undefined) {
    if (action.kind !== 'keep') return { outcome: 'created', cookie: 'new' };
    return { outcome: 'unchanged', cookie: pending.fresh === 'dead-cookie' ? 'clear' : 'none' };
  }
  const changed = action.kind === 'sign-in' || JSON.stringify(values) !== JSON.stringify(pending.values);
  // A cookie under an older key pair is re-sealed with a refresh write, which checks liveness.
  if (!changed && !pending.reseal) return { outcome: 'unchanged', cookie: 'none' };
  if (loaded.state === 'live') {
    if (action.kind === 'sign-in') return { outcome: 'created', cookie: 'new' };
    return { outcome: 'updated', cookie: pending.reseal ? 'new' : 'none' };
  }
  return loaded.state === 'replaced' ? { outcome: 'superseded', cookie: 'none' } : { outcome: 'expired', cookie: 'clear' };
}

/** The invariants, checked after every command. */
async function checkInvariants(model: Model, real: Real): Promise<void> {
  const live = model.sessions.filter((session) => session.state === 'live').map((session) => session.realId);
  expect((await real.raw.liveKeys()).sort()).toEqual(live.sort());
  expect(await real.store.getActiveSessionsCount()).toBe(live.length);
  for (const client of model.clients) {
    if (client.cookie === undefined) continue;
    const session = await real.store.get(requestWith({ [cookieName]: client.cookie }), cookieName);
    const expected = reachable(model, client);
    expect(session.isNew).toBe(expected === undefined);
    expect(session.values).toEqual(expected?.values ?? {});
  }
}

/** Rebuilds the store on the same place with the model's key list. */
async function rebuildStore(model: Model, real: Real): Promise<void> {
  const keyPairs = model.keys.map((generation) => real.keyPairs.get(generation) as KeyPair);
  real.store = (await real.backend.sessionStore<Values>({ keyPairs }, real.place, false)).store;
}

type Command = fc.AsyncCommand<Model, Real, false>;

/** Commands run so far in this file (per backend: reset before each property). */
let executed = 0;

/** A base whose run also checks the invariants afterwards. */
abstract class LifecycleCommand implements Command {
  check(_model: Readonly<Model>): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    executed++;
    await this.apply(model, real);
    await checkInvariants(model, real);
  }
  abstract apply(model: Model, real: Real): Promise<void>;
  abstract toString(): string;
}

/** A whole request: load, act, save. */
class Request_ extends LifecycleCommand {
  constructor(readonly client: number, readonly action: Action) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.pending[slotCount] === undefined;
  }
  async apply(model: Model, real: Real): Promise<void> {
    await load(model, real, this.client, slotCount);
    await finish(model, real, slotCount, this.action);
  }
  toString(): string {
    return `request(client ${this.client}, ${describeAction(this.action)})`;
  }
}

/** The first half of an in-flight request: its session is loaded now and saved by a later Finish. */
class Load extends LifecycleCommand {
  constructor(readonly client: number, readonly slot: number) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.pending[this.slot] === undefined;
  }
  apply(model: Model, real: Real): Promise<void> {
    return load(model, real, this.client, this.slot);
  }
  toString(): string {
    return `load(client ${this.client}, slot ${this.slot})`;
  }
}

class Finish extends LifecycleCommand {
  constructor(readonly slot: number, readonly action: Action) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.pending[this.slot] !== undefined;
  }
  apply(model: Model, real: Real): Promise<void> {
    return finish(model, real, this.slot, this.action);
  }
  toString(): string {
    return `finish(slot ${this.slot}, ${describeAction(this.action)})`;
  }
}

class ExpireSessions extends LifecycleCommand {
  constructor(readonly user: string) {
    super();
  }
  async apply(model: Model, real: Real): Promise<void> {
    const owned = model.sessions.filter((session) => session.state === 'live' && session.values.user === this.user);
    expect(await real.store.expireSessions(this.user, provider)).toBe(owned.length);
    for (const session of owned) session.state = 'dead';
  }
  toString(): string {
    return `expireSessions(${this.user})`;
  }
}

/** The client's session expires (its record's expiry passes). */
class Expire extends LifecycleCommand {
  constructor(readonly client: number) {
    super();
  }
  async apply(model: Model, real: Real): Promise<void> {
    const session = model.clients[this.client]?.session;
    if (session?.state !== 'live') return;
    await real.raw.setExpiry(session.realId, new Date(Date.now() - 1000));
    session.state = 'dead';
  }
  toString(): string {
    return `expire(client ${this.client})`;
  }
}

/** A new key pair in front of the list. Only between requests: a deploy restarts the store. */
class AddKey extends LifecycleCommand {
  override check(model: Readonly<Model>): boolean {
    return model.pending.every((pending) => pending === undefined) && model.keys.length < 3;
  }
  async apply(model: Model, real: Real): Promise<void> {
    const generation = model.nextKey++;
    real.keyPairs.set(generation, { authentication: randomKey(), encryption: randomKey() });
    model.keys.unshift(generation);
    await rebuildStore(model, real);
  }
  toString(): string {
    return 'addKey()';
  }
}

/** The oldest pair dropped: cookies sealed under it lead nowhere. */
class DropOldestKey extends LifecycleCommand {
  override check(model: Readonly<Model>): boolean {
    return model.pending.every((pending) => pending === undefined) && model.keys.length > 1;
  }
  async apply(model: Model, real: Real): Promise<void> {
    model.keys.pop();
    await rebuildStore(model, real);
  }
  toString(): string {
    return 'dropOldestKey()';
  }
}

/**
 * A sign-in (regenerating save) and a forced logout of the signing-in user,
 * truly concurrent. Either may win: the regenerating save resolves
 * `'expired'` (nothing of it stays live) or `'created'` (its new id may or may
 * not have been seen by the logout). The old id is dead either way, and the
 * model follows what the database shows only for the new id.
 */
class RaceSignInWithLogout extends LifecycleCommand {
  constructor(readonly client: number, readonly user: string) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.pending[slotCount] === undefined;
  }
  async apply(model: Model, real: Real): Promise<void> {
    await load(model, real, this.client, slotCount);
    const pending = model.pending[slotCount] as Pending;
    const { req, session } = real.pending[slotCount] as { req: Request; session: Session<Values> };
    model.pending[slotCount] = undefined;
    real.pending[slotCount] = undefined;
    session.regenerate();
    Object.assign(session.values, { user: this.user, provider });
    const headers = new Headers();
    const [outcome] = await Promise.all([real.store.save(req, headers, session), real.store.expireSessions(this.user, provider)]);

    if (pending.fresh === 'replaced') {
      expect(outcome).toBe('superseded');
      for (const other of model.sessions) if (other.state === 'live' && other.values.user === this.user) other.state = 'dead';
      return;
    }
    if (pending.session === undefined || pending.session.values.user !== this.user) expect(outcome).toBe('created');
    const client = model.clients[this.client] as ModelClient;
    for (const other of model.sessions) if (other.state === 'live' && other.values.user === this.user) other.state = 'dead';
    if (pending.session !== undefined) pending.session.state = outcome === 'created' ? 'replaced' : 'dead';
    const [sent] = sentCookies(headers);
    if (outcome === 'expired') {
      expect(sent?.value).toBe('');
      Object.assign(client, { cookie: undefined, session: undefined });
      return;
    }
    expect(outcome).toBe('created');
    const live = (await real.raw.liveKeys()).includes(session.id);
    const created: ModelSession = {
      values: { ...pending.values, user: this.user, provider },
      state: live ? 'live' : 'dead',
      realId: session.id,
    };
    model.sessions.push(created);
    Object.assign(client, { cookie: sent?.value, session: created, keyGeneration: model.keys[0] });
  }
  toString(): string {
    return `raceSignInWithLogout(client ${this.client}, ${this.user})`;
  }
}

/**
 * Two requests of one browser load its session, each changes one key, and
 * both save at once (in turn on FerretDB, whose conditional updates are not
 * atomic: see test/server.test.ts). Both changes survive; for the same key,
 * one of the two values does.
 */
class ConcurrentChanges extends LifecycleCommand {
  constructor(
    readonly client: number,
    readonly first: { key: string; value: number },
    readonly second: { key: string; value: number },
  ) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.pending[slotCount] === undefined;
  }
  async apply(model: Model, real: Real): Promise<void> {
    const client = model.clients[this.client] as ModelClient;
    const target = reachable(model, client);
    if (target === undefined || client.cookie === undefined) return;
    const requests = [requestWith({ [cookieName]: client.cookie }), requestWith({ [cookieName]: client.cookie })];
    const sessions = await Promise.all(requests.map((req) => real.store.get(req, cookieName)));
    const changes = [this.first, this.second];
    const base = structuredClone(target.values);
    const reseal = client.keyGeneration !== model.keys[0];
    const headers = [new Headers(), new Headers()];
    const outcomes = await real.backend.saveConcurrently(
      sessions.map((session, i) => () => {
        const { key, value } = changes[i] as { key: string; value: number };
        session.values[key] = value;
        return real.store.save(requests[i] as Request, headers[i] as Headers, session);
      }),
    );
    // A cookie under an older key pair is re-sealed (with a refresh write) by each of them.
    changes.forEach(({ key, value }, i) => expect(outcomes[i]).toBe(base[key] === value && !reseal ? 'unchanged' : 'updated'));
    if (reseal) {
      const [resealed] = sentCookies(headers[1] as Headers);
      Object.assign(client, { cookie: resealed?.value, keyGeneration: model.keys[0] });
    }
    const stored = (await real.store.get(requestWith({ [cookieName]: client.cookie }), cookieName)).values;
    const values = { ...base, [this.first.key]: this.first.value, [this.second.key]: this.second.value };
    if (this.first.key === this.second.key) {
      expect([this.first.value, this.second.value]).toContain(stored[this.first.key]);
      values[this.first.key] = stored[this.first.key];
    }
    target.values = values;
  }
  toString(): string {
    return `concurrentChanges(client ${this.client}, ${this.first.key}=${this.first.value} | ${this.second.key}=${this.second.value})`;
  }
}

function describeAction(action: Action): string {
  switch (action.kind) {
    case 'change':
      return `set ${action.key}=${action.value}`;
    case 'sign-in':
      return `sign in as ${action.user}`;
    default:
      return action.kind;
  }
}

const client = fc.integer({ min: 0, max: clientCount - 1 });
const slot = fc.integer({ min: 0, max: slotCount - 1 });
const user = fc.constantFrom(...users);
const change = fc.record({ key: fc.constantFrom('visits', 'theme', 'cart'), value: fc.integer({ min: 0, max: 3 }) });
const action: fc.Arbitrary<Action> = fc.oneof(
  change.map(({ key, value }) => ({ kind: 'change' as const, key, value })),
  fc.constant({ kind: 'keep' as const }),
  user.map((name) => ({ kind: 'sign-in' as const, user: name })),
  fc.constant({ kind: 'sign-out' as const }),
);
const commands = fc.commands(
  [
    fc.tuple(client, action).map(([c, a]) => new Request_(c, a)),
    fc.tuple(client, slot).map(([c, s]) => new Load(c, s)),
    fc.tuple(slot, action).map(([s, a]) => new Finish(s, a)),
    user.map((name) => new ExpireSessions(name)),
    client.map((c) => new Expire(c)),
    fc.constant(new AddKey()),
    fc.constant(new DropOldestKey()),
    fc.tuple(client, user).map(([c, u]) => new RaceSignInWithLogout(c, u)),
    fc.tuple(client, change, change).map(([c, a, b]) => new ConcurrentChanges(c, a, b)),
  ],
  { maxCommands: 30, size: 'max' },
);

/** Fixed seed: the same runs every time; set MONGOSTORE_MODEL_SEED to explore others. */
const seed = Number(process.env.MONGOSTORE_MODEL_SEED ?? 20261123);
const numRuns = Number(process.env.MONGOSTORE_MODEL_RUNS ?? 150);

describe.each(backends)('session lifecycle model on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  it('agrees with the model after every command', async () => {
    let runs = 0;
    executed = 0;
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        runs++;
        const place = `lifecycle_${runs}_${Math.random().toString(36).slice(2, 8)}`;
        const first = { authentication: randomKey(), encryption: randomKey() };
        const { store, raw } = await backend.sessionStore<Values>({ keyPairs: [first] }, place);
        const setup = () => ({
          model: {
            sessions: [],
            clients: Array.from({ length: clientCount }, () => ({ cookie: undefined, session: undefined, keyGeneration: 0 })),
            pending: Array.from({ length: slotCount + 1 }, () => undefined),
            keys: [0],
            nextKey: 1,
          } satisfies Model,
          real: {
            backend,
            place,
            raw,
            store,
            keyPairs: new Map([[0, first]]),
            pending: Array.from({ length: slotCount + 1 }, () => undefined),
          } satisfies Real,
        });
        await fc.asyncModelRun(setup, cmds);
      }),
      { seed, numRuns, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false },
    );
    // The runs exercised the store (not only commands whose check refused them).
    expect(executed).toBeGreaterThan(runs * 3);
    console.log(`lifecycle model on ${backend.name}: ${runs} runs, ${executed} commands, seed ${seed}`);
  }, 180_000);
});
