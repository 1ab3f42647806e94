/**
 * A model-based test of the session lifecycle under parallel requests
 * (fast-check's `fc.commands` with `fc.asyncModelRun`), on both backends,
 * against a reference model of the contract of issue 21 (per-key delta
 * saves guarded by the owner tenure; see /work/notes/contract.md and
 * docs/parallel-requests.md).
 *
 * Browsers ("clients") hold cookies. Requests load a session and save it,
 * mostly "in flight": loaded into a slot, other commands run, then finished.
 * A request sets and deletes values, adds and reads flashes, signs in as
 * someone (with or without `regenerate()`), signs out by clearing the owner
 * or by `destroy()` (then flashes into a fresh session with `new` and
 * `saveAll`), changes its lifetime, or regenerates. Its response can be lost
 * (the browser keeps its old cookie), its target can throw (the cookie rides
 * on a retried save), and it can be saved a second time (nothing sent). A
 * request can carry the browser's previous cookie (sent before the last
 * response arrived). Two in-flight requests can finish at once, and a
 * sign-in can race a forced logout. In between: forced logouts, expiry of a
 * live session, key rotation (in-flight requests keep the store, and so the
 * key list, they loaded with).
 *
 * Every value and flash the test writes is a tag `owner.tTENURE.vN` (or
 * `.fN`): the owner and owner tenure its request loaded, and a number of its
 * own. After every command the real store must agree with the model:
 * - the live records are exactly the model's live sessions, and
 *   `getActiveSessionsCount()` is their number;
 * - each live record's stored owner and expiry are the model's;
 * - each live session, loaded with a fresh request, holds the model's
 *   values, lifetime and pending flashes (read without a save, so nothing is
 *   consumed), and none of its values or flashes was written by a request
 *   whose save the model refused (a request that loaded it under another
 *   owner tenure, or a session since replaced or gone), nor under a tenure
 *   the session never had;
 * - each client's cookie loads the model's session, or a fresh one with
 *   the model's `session.error`.
 * Each save's outcome, Set-Cookie (and its Max-Age), `session.values` and
 * lifetime afterwards are checked against the model too, a second save must
 * send no command and no cookie, and the file ends with absolute minimums of
 * what it must have met (see `minimums`).
 *
 * Every run starts with two sessions (not shown in a counterexample):
 * client 0 anonymous with a `cart` and a `notice` flash, client 1 signed in
 * as alice (regenerated) with a `theme`. Values are never read from the
 * stored record (its format is the implementation's), only through `get`.
 *
 * A second property runs the same model under a session limit of one live
 * session per user (`maxSessionsPerUser: 1`; runs alternate
 * `'evict-oldest'` and `'refuse'`): a sign-in (a save that gives a session
 * an owner it did not have) ends the user's least recently written other
 * sessions, or, at the limit, writes nothing and resolves `'limited'`
 * without a cookie; no user ever has more live sessions than the limit;
 * every other save is as without a limit. Among saves run at once, a
 * sign-in may instead be written and then withdrawn (`'limited'`, the
 * cookie cleared), the other having taken the place.
 *
 * Where the contract leaves a choice, the model accepts either: a tombstone
 * whose successors are all gone may answer 'replaced' or be gone (a save
 * holding it 'superseded' or 'expired'); the save retried after a throwing
 * target may resolve 'created', 'updated' or 'unchanged' (with the cookie);
 * two saves run at once (and a sign-in racing a forced logout) may have
 * taken either order.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair, SaveOutcome, Session, SessionStoreConfig } from '../src/index.ts';
import type { SessionStore } from '../src/session-store.ts';
import { type Backend, backends, type RawPlace } from './support/backends.ts';
import { ImmutableHeaders, randomKey, requestWith, type SentCookie, sentCookies } from './support/http.ts';

type Values = Record<string, unknown>;
const cookieName = 'sid';
const provider = 'password';
const users = ['alice', 'bob'] as const;
const valueKeys = ['cart', 'theme', 'visits'] as const;
const flashKeys = ['_flash', 'notice'] as const;
type FlashKey = (typeof flashKeys)[number];
const clientCount = 2;
/** Slots for in-flight requests; one more (`scratch`) holds a whole request while it runs. */
const slotCount = 4;
const scratch = slotCount;
const day = 24 * 3600;
/** The lifetimes a request can set: the store's default, a browser-session one, a "remember me" one. */
const lifetimes = [
  { maxAge: 30 * day, persistent: true },
  { maxAge: 2 * 3600, persistent: false },
  { maxAge: 90 * day, persistent: true },
] as const;
type LifetimeChoice = 0 | 1 | 2;
/** Clock slack when comparing a stored expiry with the window of the save that wrote it. */
const expirySlackMs = 2000;

interface ModelFlash {
  key: FlashKey;
  value: string;
}

/** One session record as the model sees it: live, replaced by a regeneration (a tombstone), or gone. */
interface ModelSession {
  realId: string;
  state: 'live' | 'replaced' | 'dead';
  /** The session a regeneration moved it to. */
  successor: ModelSession | undefined;
  values: Record<string, string>;
  flashes: ModelFlash[];
  /** The owner tenure: a number that is new with every change of the stored owner. */
  tenure: number;
  /** Every tenure whose values may be in it (this one, the ones before it, those of the session it was regenerated from). */
  history: number[];
  lifetime: LifetimeChoice;
  /** The stored expiry lies in this window (ms). */
  expiry: [number, number];
  /** The expiry was capped at an hour (a transient save): the next save that stores a value rolls it. */
  capped: boolean;
  /** Saves that wrote values, flashes, owner or lifetime. */
  writes: number;
  /** When the store last wrote the record (the session limit's "least recently used"), as a model-wide sequence. */
  lastWrite: number;
  lifetimeWrites: number;
  /** The last cookie the store sent for it (delivered or not): how the checks load it. */
  issued: { value: string; generation: number } | undefined;
}

interface ModelCookie {
  value: string;
  /** The key pair that sealed it. */
  generation: number;
  session: ModelSession;
}

interface ModelClient {
  cookie: ModelCookie | undefined;
  /** The cookie before the last Set-Cookie that reached it: what a request sent before that response carries. */
  previous: ModelCookie | undefined;
}

/** A request that has loaded its session and not saved it yet. */
interface Pending {
  client: number;
  /** Loaded by a Load command (other commands ran before its save), not a whole request. */
  inFlight: boolean;
  cookie: ModelCookie | undefined;
  /** The key list of the store that loaded it (and saves it): the first seals. */
  storeKeys: number[];
  loaded: ModelSession | undefined;
  fresh: 'no-cookie' | 'dead-cookie' | 'replaced' | undefined;
  /** The tombstone a fresh session's cookie named (error 'replaced'). */
  replacedTarget: ModelSession | undefined;
  /** The owner tenure it loaded (for a fresh session: the tenure it starts if created). */
  tenure: number;
  owner: string | undefined;
  values: Record<string, string>;
  flashes: ModelFlash[];
  lifetime: LifetimeChoice;
  writesAtLoad: number;
  lifetimeWritesAtLoad: number;
  /** The expiry it loaded was capped (a transient save): a save that stores a value rolls it. */
  cappedAtLoad: boolean;
  /** Its cookie was sealed under an older key pair than its store's first: a save re-seals it. */
  reseal: boolean;
}

interface Stats {
  commands: number;
  loads: number;
  /** Loads that gave a live session (not a fresh one). */
  liveLoads: number;
  requests: number;
  inFlightSaves: number;
  /** In-flight saves that wrote although another save had written the session since their load. */
  deltaSavesMet: number;
  /** Saves of requests whose session changed owner since their load (same id): 'superseded'. */
  ownerChangesMet: number;
  supersededByRegeneration: number;
  superseded: number;
  ownerChanges: number;
  signOutsByClearing: number;
  signInsFromSomeone: number;
  destroys: number;
  destroyedSuccessors: number;
  flashesAdded: number;
  flashesRead: number;
  flashesReadAcrossOwners: number;
  flashesDroppedByOwnerChange: number;
  flashesCarriedFromAnonymous: number;
  replacedLoads: number;
  staleCookieLoads: number;
  lifetimeChanges: number;
  /** Writing saves of requests that did not change the lifetime, after another request changed it. */
  lifetimeConflicts: number;
  /** ... of which refreshed the expiry or sent a cookie, with the stored lifetime. */
  lifetimeAdopted: number;
  regenerations: number;
  regenerationCarries: number;
  secondSaves: number;
  lostResponses: number;
  throwingTargets: number;
  reseals: number;
  /** Saves with no owner and no values of their own (flashes at most): expiry capped, not rolled. */
  transientSaves: number;
  /** ... whose capped expiry a later save that stored a value rolled, with nothing else to roll it. */
  cappedRolled: number;
  rotationsInFlight: number;
  expiries: number;
  forcedLogouts: number;
  concurrentFinishes: number;
  races: number;
  /** Sessions the limit ended ('evict-oldest'). */
  limitEvictions: number;
  /** Sign-ins refused before their write ('refuse'). */
  limitRefusals: number;
  /** Sign-ins written, then withdrawn because a parallel one took the place. */
  limitWithdrawals: number;
}

const zeroStats = (): Stats => ({
  commands: 0,
  loads: 0,
  liveLoads: 0,
  requests: 0,
  inFlightSaves: 0,
  deltaSavesMet: 0,
  ownerChangesMet: 0,
  supersededByRegeneration: 0,
  superseded: 0,
  ownerChanges: 0,
  signOutsByClearing: 0,
  signInsFromSomeone: 0,
  destroys: 0,
  destroyedSuccessors: 0,
  flashesAdded: 0,
  flashesRead: 0,
  flashesReadAcrossOwners: 0,
  flashesDroppedByOwnerChange: 0,
  flashesCarriedFromAnonymous: 0,
  replacedLoads: 0,
  staleCookieLoads: 0,
  lifetimeChanges: 0,
  lifetimeConflicts: 0,
  lifetimeAdopted: 0,
  regenerations: 0,
  regenerationCarries: 0,
  secondSaves: 0,
  lostResponses: 0,
  throwingTargets: 0,
  reseals: 0,
  transientSaves: 0,
  cappedRolled: 0,
  rotationsInFlight: 0,
  expiries: 0,
  forcedLogouts: 0,
  concurrentFinishes: 0,
  races: 0,
  limitEvictions: 0,
  limitRefusals: 0,
  limitWithdrawals: 0,
});

/** What the file must have met per backend, at least: a generator that stops producing them fails. */
const minimums: Partial<Stats> = {
  commands: 6000,
  requests: 4000,
  inFlightSaves: 1500,
  deltaSavesMet: 150,
  ownerChangesMet: 40,
  supersededByRegeneration: 120,
  superseded: 250,
  ownerChanges: 400,
  signOutsByClearing: 70,
  signInsFromSomeone: 90,
  destroys: 90,
  destroyedSuccessors: 6,
  flashesRead: 200,
  flashesReadAcrossOwners: 50,
  flashesDroppedByOwnerChange: 100,
  flashesCarriedFromAnonymous: 150,
  replacedLoads: 200,
  staleCookieLoads: 500,
  lifetimeChanges: 250,
  lifetimeConflicts: 25,
  lifetimeAdopted: 6,
  regenerations: 300,
  regenerationCarries: 25,
  transientSaves: 150,
  cappedRolled: 30,
  secondSaves: 500,
  lostResponses: 250,
  throwingTargets: 150,
  reseals: 200,
  rotationsInFlight: 250,
  expiries: 180,
  forcedLogouts: 100,
  concurrentFinishes: 90,
  races: 120,
};

/** What the runs under a session limit must have met, at least. */
const limitMinimums: Partial<Stats> = { requests: 1500, ownerChanges: 150, limitEvictions: 30, limitRefusals: 30, races: 20 };

interface Model {
  sessions: ModelSession[];
  clients: ModelClient[];
  pending: (Pending | undefined)[];
  /** Key generations in the current store's list, the first seals. */
  keys: number[];
  nextKey: number;
  nextTenure: number;
  nextTag: number;
  /** Each tag the test wrote: the tenure its request loaded, and whether its save may have stored it. */
  writes: Record<number, { tenure: number; stored: boolean }>;
  /** The store's session limit (maxSessionsPerUser, onSessionLimit), if any. */
  limit: { max: number; policy: 'evict-oldest' | 'refuse' } | undefined;
  nextWrite: number;
  /** Settling saves that ran at once: a sign-in may have been withdrawn by the other's check. */
  concurrent: boolean;
  stats: Stats;
}

interface RealPending {
  req: Request;
  session: Session<Values>;
  /** Under a session limit: its save starts in a later millisecond than any save before it ended (see `saveReal`). */
  spaced: boolean;
  /** The store that loaded it: a key rotation meanwhile does not change it. */
  store: SessionStore<Values>;
}

interface Real {
  backend: Backend;
  /** The store configuration besides its keys (the session limit). */
  config: Partial<SessionStoreConfig>;
  place: string;
  raw: RawPlace;
  store: SessionStore<Values>;
  keyPairs: Map<number, KeyPair>;
  pending: (RealPending | undefined)[];
}

/** What a request does with the session it loaded. */
type Op =
  | { kind: 'set'; key: string }
  | { kind: 'delete'; key: string }
  | { kind: 'add-flash'; key: FlashKey }
  | { kind: 'read-flashes'; key: FlashKey }
  | { kind: 'sign-in'; user: string; regenerate: boolean }
  | { kind: 'sign-out'; regenerate: boolean }
  | { kind: 'lifetime'; choice: LifetimeChoice }
  | { kind: 'regenerate' }
  | { kind: 'destroy'; flash: boolean };

/**
 * A request's ops, and how its response goes: delivered, lost (the browser
 * keeps its old cookie), or through a target that throws (the save is
 * retried on good headers); `second`: saved once more afterwards.
 */
interface Action {
  ops: Op[];
  delivery: 'ok' | 'lost' | 'throw';
  second: boolean;
}

/** What a request changed in memory, as the model sees it. */
interface Changes {
  values: Record<string, string>;
  added: ModelFlash[];
  /** Values of the flashes it read. */
  read: string[];
  lifetime: LifetimeChoice;
  regenerate: boolean;
  /** `destroy()`; with `flash`, the fresh session `new` gave, holding one flash, under its own tenure. */
  destroy: { flash: ModelFlash | undefined; tenure: number } | undefined;
  /** Every tag it wrote. */
  tags: { n: number; value: string }[];
}

/** What the real save did. */
interface Observed {
  outcome: SaveOutcome;
  cookies: SentCookie[];
  id: string;
  values: Values;
  options: { maxAge: number; persistent: boolean };
  before: number;
  after: number;
  lost: boolean;
  /** The target threw on the first save (the outcome and cookies are the retry's). */
  threw: boolean;
  throwing: boolean;
  /** After destroy() + new + saveAll: the fresh session's id. */
  freshId: string;
}

const lifetimeOf = (choice: LifetimeChoice) => lifetimes[choice];
const sorted = (items: readonly string[]) => [...items].sort();
const tagPattern = /^(\w+)\.t(\d+)\.[vf](\d+)$/;

function newTag(model: Model, p: Pending, kind: 'v' | 'f', tags: Changes['tags']): string {
  const n = model.nextTag++;
  const value = `${p.owner ?? 'anon'}.t${p.tenure}.${kind}${n}`;
  tags.push({ n, value });
  return value;
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && b[key] === a[key]);
}

/** The stored values with this request's delta applied: the keys it set take its value, the ones it deleted go. */
function applyDelta(stored: Record<string, string>, base: Record<string, string>, ours: Record<string, string>): Record<string, string> {
  const result = { ...stored };
  for (const key of new Set([...Object.keys(base), ...Object.keys(ours)])) {
    if (ours[key] === base[key]) continue;
    if (Object.hasOwn(ours, key)) result[key] = ours[key] as string;
    else delete result[key];
  }
  return result;
}

/** The session a chain of regenerations from `session` ends at. */
function chainEnd(session: ModelSession): ModelSession {
  let end = session;
  while (end.successor !== undefined) end = end.successor;
  return end;
}

/**
 * A tombstone whose successors are all gone: the contract does not say
 * whether it still answers 'replaced' (its successor was deleted) or is
 * gone too, so the model accepts either there.
 */
function uncertain(tombstone: ModelSession): boolean {
  return chainEnd(tombstone).state !== 'live';
}

function deliver(client: ModelClient, cookie: ModelCookie | undefined): void {
  client.previous = client.cookie;
  client.cookie = cookie;
}

function lifetimeNow(session: Session<Values>) {
  return { maxAge: session.options.maxAge, persistent: session.options.persistent };
}

interface LoadResult {
  loaded: ModelSession | undefined;
  fresh: Pending['fresh'];
  replacedTarget: ModelSession | undefined;
}

/** Checks what `store.get` gave for `cookie` against the model: session, values, lifetime, error. */
function expectLoad(model: Model, cookie: ModelCookie | undefined, session: Session<Values>): LoadResult {
  const fresh = (reason: Pending['fresh'], replacedTarget?: ModelSession): LoadResult => {
    expect(session.isNew).toBe(true);
    expect(session.values).toEqual({});
    expect(lifetimeNow(session)).toEqual(lifetimeOf(0));
    return { loaded: undefined, fresh: reason, replacedTarget };
  };
  if (cookie === undefined) {
    expect(session.error).toBeUndefined();
    return fresh('no-cookie');
  }
  if (!model.keys.includes(cookie.generation)) {
    expect(session.error).toBe('unknown-key');
    return fresh('dead-cookie');
  }
  const target = cookie.session;
  if (target.state === 'live') {
    expect({ isNew: session.isNew, error: session.error, id: session.id }).toEqual({ isNew: false, error: undefined, id: target.realId });
    expect(session.values).toEqual(target.values);
    expect(lifetimeNow(session)).toEqual(lifetimeOf(target.lifetime));
    return { loaded: target, fresh: undefined, replacedTarget: undefined };
  }
  if (target.state === 'replaced') {
    if (uncertain(target) && session.error === 'not-found') return fresh('dead-cookie');
    expect(session.error).toBe('replaced');
    return fresh('replaced', target);
  }
  expect(session.error).toBe('not-found');
  return fresh('dead-cookie');
}

/** Loads the client's session (its current cookie, or the one before) into a slot: model and real side. */
async function load(model: Model, real: Real, clientIndex: number, slot: number, stale: boolean, inFlight: boolean): Promise<void> {
  const client = model.clients[clientIndex] as ModelClient;
  const cookie = stale ? client.previous : client.cookie;
  if (stale) model.stats.staleCookieLoads++;
  const req = requestWith(cookie === undefined ? {} : { [cookieName]: cookie.value });
  const store = real.store;
  const session = await store.get(req, cookieName);
  const { loaded, fresh, replacedTarget } = expectLoad(model, cookie, session);
  model.stats.loads++;
  if (loaded !== undefined) model.stats.liveLoads++;
  if (fresh === 'replaced') model.stats.replacedLoads++;
  model.pending[slot] = {
    client: clientIndex,
    inFlight,
    cookie,
    storeKeys: [...model.keys],
    loaded,
    fresh,
    replacedTarget,
    tenure: loaded?.tenure ?? model.nextTenure++,
    owner: loaded?.values.user,
    values: { ...(loaded?.values ?? {}) },
    flashes: loaded?.flashes.map((flash) => ({ ...flash })) ?? [],
    lifetime: loaded?.lifetime ?? 0,
    writesAtLoad: loaded?.writes ?? 0,
    cappedAtLoad: loaded?.capped ?? false,
    lifetimeWritesAtLoad: loaded?.lifetimeWrites ?? 0,
    reseal: loaded !== undefined && cookie !== undefined && cookie.generation !== model.keys[0],
  };
  real.pending[slot] = { req, session, store, spaced: real.config.maxSessionsPerUser !== undefined };
}

/** Applies the ops to the real session and describes them for the model; checks the flashes it reads. */
async function prepare(model: Model, p: Pending, rp: RealPending, ops: readonly Op[]): Promise<Changes> {
  const { session } = rp;
  const ch: Changes = { values: { ...p.values }, added: [], read: [], lifetime: p.lifetime, regenerate: false, destroy: undefined, tags: [] };
  const unread = [...p.flashes];
  const stats = model.stats;
  for (const op of ops) {
    switch (op.kind) {
      case 'set': {
        const tag = newTag(model, p, 'v', ch.tags);
        ch.values[op.key] = tag;
        session.values[op.key] = tag;
        break;
      }
      case 'delete':
        delete ch.values[op.key];
        delete session.values[op.key];
        break;
      case 'add-flash': {
        const value = newTag(model, p, 'f', ch.tags);
        ch.added.push({ key: op.key, value });
        session.addFlash(value, op.key);
        stats.flashesAdded++;
        break;
      }
      case 'read-flashes': {
        const got = session.flashes<string>(op.key);
        const expected = unread.filter((flash) => flash.key === op.key);
        expect(sorted(got)).toEqual(sorted(expected.map((flash) => flash.value)));
        for (const flash of expected) {
          unread.splice(unread.indexOf(flash), 1);
          ch.read.push(flash.value);
          stats.flashesRead++;
          if (!flash.value.startsWith(`${p.owner ?? 'anon'}.`)) stats.flashesReadAcrossOwners++;
        }
        break;
      }
      case 'sign-in':
        Object.assign(ch.values, { user: op.user, provider });
        Object.assign(session.values, { user: op.user, provider });
        if (op.regenerate) session.regenerate();
        ch.regenerate ||= op.regenerate;
        break;
      case 'sign-out':
        delete ch.values.user;
        delete ch.values.provider;
        delete session.values.user;
        delete session.values.provider;
        if (op.regenerate) session.regenerate();
        ch.regenerate ||= op.regenerate;
        break;
      case 'lifetime':
        ch.lifetime = op.choice;
        Object.assign(session.options, lifetimeOf(op.choice));
        break;
      case 'regenerate':
        session.regenerate();
        ch.regenerate = true;
        break;
      case 'destroy': {
        session.destroy();
        const tenure = model.nextTenure++;
        let flash: ModelFlash | undefined;
        if (op.flash) {
          const fresh = await rp.store.new(rp.req, cookieName);
          expect(fresh.isNew).toBe(true);
          const n = model.nextTag++;
          flash = { key: '_flash', value: `anon.t${tenure}.f${n}` };
          ch.tags.push({ n, value: flash.value });
          fresh.addFlash(flash.value);
        }
        ch.destroy = { flash, tenure };
        break;
      }
    }
  }
  return ch;
}

/** Saves the request as its action says; the observations the model is checked against. */
async function saveReal(rp: RealPending, ch: Changes, delivery: Action['delivery']): Promise<Observed> {
  const { req, session, store } = rp;
  // The limit orders sessions by their last write, in milliseconds on MongoDB: a save that
  // starts after the last one ended in the same millisecond could tie with it (sessions that
  // tie go by id, which the model cannot know), so it waits for the next one.
  while (rp.spaced && Date.now() <= lastSaveEnded) await new Promise((resolve) => setTimeout(resolve, 1));
  const before = Date.now();
  let headers = new Headers();
  let outcome: SaveOutcome;
  let threw = false;
  let freshId = '';
  if (ch.destroy?.flash !== undefined) {
    // Sign out and flash "signed out" in one response: the destroyed session, then the fresh one.
    await store.saveAll(req, headers);
    const fresh = await store.new(req, cookieName);
    freshId = fresh.id;
    outcome = await store.save(req, new Headers(), session);
  } else if (delivery === 'throw') {
    try {
      outcome = await store.save(req, new ImmutableHeaders(), session);
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError);
      threw = true;
      headers = new Headers();
      outcome = await store.save(req, headers, session);
    }
  } else {
    outcome = await store.save(req, headers, session);
  }
  lastSaveEnded = Date.now();
  return {
    outcome,
    cookies: sentCookies(headers),
    id: session.id,
    values: { ...session.values },
    options: lifetimeNow(session),
    before,
    after: Date.now(),
    lost: delivery === 'lost',
    threw,
    throwing: delivery === 'throw' && ch.destroy?.flash === undefined,
    freshId,
  };
}

/** When the last save ended (ms): see `saveReal`. */
let lastSaveEnded = 0;

type CookieKind = 'new' | 'clear';

/** The outcome and Set-Cookie lines of a save against the model's. */
function expectOutcome(obs: Observed, outcome: SaveOutcome, cookies: CookieKind[]): void {
  const got = { outcome: obs.outcome, cookies: obs.cookies.map((cookie): CookieKind => (cookie.value === '' ? 'clear' : 'new')) };
  // A target that throws throws only when a cookie is due.
  if (obs.throwing) expect({ threw: obs.threw, outcome }).toEqual({ threw: cookies.length > 0, outcome });
  if (obs.threw && (outcome === 'created' || outcome === 'updated')) {
    // The cookie was not delivered: the retried save sends it, riding on a guarded write.
    expect(['created', 'updated', 'unchanged']).toContain(obs.outcome);
    got.outcome = outcome;
  }
  expect(got).toEqual({ outcome, cookies });
}

/** A sent cookie's Max-Age (or none) matches the lifetime in force (capped for a transient save). */
function expectCookieLifetime(cookie: SentCookie, choice: LifetimeChoice, transient = false): void {
  const { persistent } = lifetimeOf(choice);
  const maxAge = lifetimeMs(choice, transient) / 1000;
  if (!persistent) {
    expect(cookie.attributes['max-age']).toBeUndefined();
    return;
  }
  const sent = Number(cookie.attributes['max-age']);
  expect(sent).toBeGreaterThanOrEqual(maxAge - 5);
  expect(sent).toBeLessThanOrEqual(maxAge + 1);
}

/**
 * A save whose own values are empty (no owner, flashes at most) is
 * transient: it does not roll the stored expiry when a refresh is due; a new
 * session, or one signed out by clearing its owner, gets an expiry capped at
 * an hour from now (src/lifetime.ts).
 */
const transientMs = 60 * 60 * 1000;
const isTransient = (values: Record<string, string>) => Object.keys(values).length === 0;

/** How long a save gives the session: the lifetime, capped for a transient save. */
function lifetimeMs(choice: LifetimeChoice, transient: boolean): number {
  const full = lifetimeOf(choice).maxAge * 1000;
  return transient ? Math.min(full, transientMs) : full;
}

function windowOf(obs: Observed, choice: LifetimeChoice, transient = false): [number, number] {
  const ms = lifetimeMs(choice, transient);
  return [obs.before + ms, obs.after + ms];
}

function newModelSession(
  init: Pick<ModelSession, 'realId' | 'values' | 'flashes' | 'tenure' | 'history' | 'lifetime' | 'expiry'>,
  transient = false,
): ModelSession {
  const capped = transient && lifetimeMs(init.lifetime, true) < lifetimeMs(init.lifetime, false);
  return { ...init, capped, state: 'live', successor: undefined, writes: 0, lastWrite: 0, lifetimeWrites: 0, issued: undefined };
}

/** The live sessions of `user` in the model. */
function liveOf(model: Model, user: string): ModelSession[] {
  return model.sessions.filter((session) => session.state === 'live' && session.values.user === user);
}

/** The user a save signs in under a session limit: one is set, and the save gives the session an owner it did not have. */
function limitedSignIn(model: Model, user: string | undefined, gained: boolean): string | undefined {
  return model.limit !== undefined && gained && user !== undefined ? user : undefined;
}

/** A sign-in written, then withdrawn by the limit: only among saves that ran at once ('limited', the cookie cleared). */
function isWithdrawn(model: Model, obs: Observed): boolean {
  return model.concurrent && obs.outcome === 'limited' && obs.cookies.length === 1 && obs.cookies[0]?.value === '';
}

/**
 * `'refuse'`, the user at its limit already: the save writes nothing and
 * resolves 'limited' without a cookie. Among saves that ran at once, one
 * the model would refuse here may instead have been written and then
 * withdrawn (the other took the place first): that is settled after the write.
 */
function refusedBefore(model: Model, user: string, obs: Observed): boolean {
  if (model.limit?.policy !== 'refuse' || liveOf(model, user).length < model.limit.max || isWithdrawn(model, obs)) return false;
  expectOutcome(obs, 'limited', []);
  model.stats.limitRefusals++;
  return true;
}

/** After a sign-in's write: `'evict-oldest'` ends the user's least recently written sessions beyond the limit (never the one just written). */
function trim(model: Model, user: string, own: ModelSession): void {
  const limit = model.limit as NonNullable<Model['limit']>;
  own.lastWrite = model.nextWrite++;
  const owned = liveOf(model, user).sort((a, b) => b.lastWrite - a.lastWrite);
  expect(owned[0]).toBe(own);
  if (limit.policy === 'refuse') return;
  for (const session of owned.slice(limit.max)) {
    session.state = 'dead';
    model.stats.limitEvictions++;
  }
}

/**
 * The model's save: checks the observed outcome, cookies and values against
 * the contract and moves the model on. Throws (an assertion) on a mismatch.
 */
function settle(model: Model, slot: number, ch: Changes, obs: Observed): void {
  const p = model.pending[slot] as Pending;
  model.pending[slot] = undefined;
  const stats = model.stats;
  const client = model.clients[p.client] as ModelClient;
  stats.requests++;
  if (p.inFlight) stats.inFlightSaves++;
  if (p.storeKeys.join() !== model.keys.join()) stats.rotationsInFlight++;
  if (obs.threw) stats.throwingTargets++;
  const generation = p.storeKeys[0] as number;
  /** Records whether this request's tags may be stored. */
  const record = (stored: boolean) => {
    const kept = new Set([...Object.values(ch.values), ...ch.added.map((flash) => flash.value), ch.destroy?.flash?.value]);
    // A destroying request writes one tag at most: the flash of the fresh session `new` gave (its own tenure).
    const tenure = ch.destroy?.tenure ?? p.tenure;
    for (const { n, value } of ch.tags) model.writes[n] = { tenure, stored: stored && kept.has(value) };
  };
  /** The browser gets `cookie` (or the clearing one), unless the response is lost. */
  const send = (cookie: ModelCookie | undefined) => {
    if (obs.lost) stats.lostResponses++;
    else deliver(client, cookie);
  };
  const issue = (session: ModelSession, sent: SentCookie | undefined) => {
    const value = (sent as SentCookie).value;
    session.issued = { value, generation };
    send({ value, generation, session });
  };

  if (ch.destroy !== undefined) {
    const flash = ch.destroy.flash;
    // One Set-Cookie for the name: the fresh session's when it is stored, else the clearing one.
    expectOutcome(obs, 'deleted', flash === undefined ? ['clear'] : ['new']);
    stats.destroys++;
    // Sign-out wins: the session and every successor it was regenerated into.
    const target = p.loaded ?? p.replacedTarget;
    for (let session = target; session !== undefined; session = session.successor) {
      if (session.state !== 'live') continue;
      session.state = 'dead';
      if (session !== target) stats.destroyedSuccessors++;
    }
    record(flash !== undefined);
    if (flash === undefined) {
      send(undefined);
      return;
    }
    // Holding a flash only: transient.
    const created = newModelSession(
      {
        realId: obs.freshId,
        values: {},
        flashes: [flash],
        tenure: ch.destroy.tenure,
        history: [ch.destroy.tenure],
        lifetime: 0,
        expiry: windowOf(obs, 0, true),
      },
      true,
    );
    model.sessions.push(created);
    stats.transientSaves++;
    expectCookieLifetime(obs.cookies[0] as SentCookie, 0, true);
    issue(created, obs.cookies[0]);
    return;
  }

  if (p.loaded === undefined) {
    const content = Object.keys(ch.values).length > 0 || ch.added.length > 0;
    if (p.fresh === 'replaced' && !ch.regenerate) {
      // A new request with a just-replaced cookie: nothing of it is stored, no cookie.
      expectOutcome(obs, 'superseded', []);
      stats.superseded++;
      record(false);
      return;
    }
    if (!content) {
      expectOutcome(obs, 'unchanged', p.fresh === 'dead-cookie' ? ['clear'] : []);
      if (p.fresh === 'dead-cookie') send(undefined);
      record(false);
      return;
    }
    const signIn = limitedSignIn(model, ch.values.user, true);
    if (signIn !== undefined && refusedBefore(model, signIn, obs)) {
      record(false);
      return;
    }
    if (signIn !== undefined && isWithdrawn(model, obs)) {
      expectOutcome(obs, 'limited', ['clear']);
      model.stats.limitWithdrawals++;
      record(false);
      send(undefined);
      return;
    }
    expectOutcome(obs, 'created', ['new']);
    expect(obs.values).toEqual(ch.values);
    const transient = isTransient(ch.values);
    if (transient) stats.transientSaves++;
    const created = newModelSession(
      {
        realId: obs.id,
        values: { ...ch.values },
        flashes: [...ch.added],
        tenure: p.tenure,
        history: [p.tenure],
        lifetime: ch.lifetime,
        expiry: windowOf(obs, ch.lifetime, transient),
      },
      transient,
    );
    model.sessions.push(created);
    created.lastWrite = model.nextWrite++;
    if (signIn !== undefined) trim(model, signIn, created);
    if (ch.lifetime !== 0) stats.lifetimeChanges++;
    expectCookieLifetime(obs.cookies[0] as SentCookie, ch.lifetime, transient);
    record(true);
    issue(created, obs.cookies[0]);
    return;
  }

  const session = p.loaded;
  const ownerChanged = ch.values.user !== p.values.user;
  const fromSomeone = p.values.user !== undefined;
  const lifetimeChanged = ch.lifetime !== p.lifetime;
  const changed = !sameRecord(ch.values, p.values) || ch.added.length > 0 || ch.read.length > 0 || lifetimeChanged || ch.regenerate;
  if (!changed && !p.reseal) {
    // Nothing to write, and so no command and no cookie.
    expectOutcome(obs, 'unchanged', []);
    return;
  }
  if (p.reseal) stats.reseals++;
  // The limit's count comes before the write, and so before whatever the write would find.
  const signIn = limitedSignIn(model, ch.values.user, ownerChanged);
  if (signIn !== undefined && refusedBefore(model, signIn, obs)) {
    record(false);
    return;
  }
  if (session.state === 'dead') {
    expectOutcome(obs, 'expired', ['clear']);
    send(undefined);
    record(false);
    return;
  }
  if (session.state === 'replaced') {
    stats.superseded++;
    stats.supersededByRegeneration++;
    record(false);
    if (uncertain(session) && obs.outcome === 'expired') {
      expectOutcome(obs, 'expired', ['clear']);
      send(undefined);
      return;
    }
    expectOutcome(obs, 'superseded', []);
    return;
  }
  if (session.tenure !== p.tenure) {
    // The owner changed since this request loaded: none of it is written.
    expectOutcome(obs, 'superseded', []);
    stats.superseded++;
    stats.ownerChangesMet++;
    record(false);
    return;
  }

  if (signIn !== undefined && isWithdrawn(model, obs)) {
    // Written, then withdrawn: the session (after regenerate(): the one it moved to) is gone.
    expectOutcome(obs, 'limited', ['clear']);
    model.stats.limitWithdrawals++;
    if (ch.regenerate) {
      const gone = newModelSession({ realId: '', values: {}, flashes: [], tenure: model.nextTenure++, history: [], lifetime: 0, expiry: [0, 0] });
      gone.state = 'dead';
      session.state = 'replaced';
      session.successor = gone;
    } else {
      session.state = 'dead';
    }
    record(false);
    send(undefined);
    return;
  }

  // Live, same tenure: this request's changes are written.
  const metLaterWrite = session.writes > p.writesAtLoad;
  if (p.inFlight && metLaterWrite && changed) stats.deltaSavesMet++;
  if (!lifetimeChanged && session.lifetimeWrites > p.lifetimeWritesAtLoad) stats.lifetimeConflicts++;
  // A change of an existing owner takes this request's values whole and drops the previous owner's flashes.
  const wholesale = ownerChanged && fromSomeone;
  const values = wholesale ? { ...ch.values } : applyDelta(session.values, p.values, ch.values);
  const kept = session.flashes.filter((flash) => !ch.read.includes(flash.value));
  if (wholesale) stats.flashesDroppedByOwnerChange += kept.length;
  else if (ownerChanged) stats.flashesCarriedFromAnonymous += kept.length;
  const flashes = [...(wholesale ? [] : kept), ...ch.added];
  const lifetime = lifetimeChanged ? ch.lifetime : session.lifetime;
  const tenure = ownerChanged ? model.nextTenure++ : session.tenure;
  if (ownerChanged) {
    stats.ownerChanges++;
    if (ch.values.user === undefined) stats.signOutsByClearing++;
    else if (fromSomeone) stats.signInsFromSomeone++;
  }
  if (lifetimeChanged) stats.lifetimeChanges++;
  // A transient save does not roll the expiry; signing out by clearing the
  // owner caps it; a save that stores a value rolls an expiry a capped save
  // left (the expiry this request loaded decides, as the store compares with it).
  const transient = isTransient(ch.values);
  if (transient) stats.transientSaves++;
  const capNow = transient && ownerChanged;
  const refresh = ch.regenerate || lifetimeChanged || p.reseal || capNow || (!transient && p.cappedAtLoad);
  if (!transient && p.cappedAtLoad && !ch.regenerate && !lifetimeChanged && !p.reseal) stats.cappedRolled++;

  if (ch.regenerate) {
    expectOutcome(obs, 'created', ['new']);
    expect(obs.id).not.toBe(session.realId);
    const created = newModelSession({
      realId: obs.id,
      values,
      flashes,
      tenure,
      history: ownerChanged ? [...session.history, tenure] : [...session.history],
      lifetime,
      expiry: windowOf(obs, lifetime, capNow),
    }, capNow);
    session.state = 'replaced';
    session.successor = created;
    model.sessions.push(created);
    created.lastWrite = model.nextWrite++;
    if (signIn !== undefined) trim(model, signIn, created);
    stats.regenerations++;
    if (metLaterWrite) stats.regenerationCarries++;
    expectCookieLifetime(obs.cookies[0] as SentCookie, lifetime, capNow);
    issue(created, obs.cookies[0]);
  } else {
    // A cookie under an older key is re-sealed even when the expiry stays (a transient save).
    const cookie = refresh || p.reseal;
    expectOutcome(obs, changed || refresh ? 'updated' : 'unchanged', cookie ? ['new'] : []);
    session.values = values;
    session.flashes = flashes;
    if (changed) session.writes++;
    if (changed || refresh) session.lastWrite = model.nextWrite++;
    if (lifetimeChanged) session.lifetimeWrites++;
    session.lifetime = lifetime;
    if (ownerChanged) {
      session.tenure = tenure;
      session.history.push(tenure);
    }
    if (refresh) {
      session.expiry = windowOf(obs, lifetime, capNow);
      session.capped = capNow && lifetimeMs(lifetime, true) < lifetimeMs(lifetime, false);
      expectCookieLifetime(obs.cookies[0] as SentCookie, lifetime, capNow);
    }
    if (cookie) issue(session, obs.cookies[0]);
    if (signIn !== undefined) trim(model, signIn, session);
  }
  // After a save, `values` are this request's own (not re-read)...
  expect(obs.values).toEqual(ch.values);
  // ...and a request that did not change the lifetime but refreshed uses (adopts) the stored one.
  if (refresh && !lifetimeChanged) {
    expect(obs.options).toEqual(lifetimeOf(lifetime));
    if (lifetime !== p.lifetime) stats.lifetimeAdopted++;
  }
  record(true);
}

/** Saved once more: nothing is sent, no command, the same outcome once ended. */
async function secondSave(model: Model, real: Real, rp: RealPending, first: SaveOutcome): Promise<void> {
  const headers = new Headers();
  let outcome: SaveOutcome | undefined;
  const commands = await real.backend.during(async () => {
    outcome = await rp.store.save(rp.req, headers, rp.session);
  });
  const ended = first === 'deleted' || first === 'expired' || first === 'superseded' || first === 'limited';
  expect({ outcome, commands, cookies: sentCookies(headers).length }).toEqual({ outcome: ended ? first : 'unchanged', commands: [], cookies: 0 });
  model.stats.secondSaves++;
}

/** Forced logout in the model: every live session of `user` ends. */
function logout(model: Model, user: string): number {
  const owned = model.sessions.filter((session) => session.state === 'live' && session.values.user === user);
  for (const session of owned) session.state = 'dead';
  return owned.length;
}

/** Loads, applies and saves one request (a slot's, loaded before). */
async function finish(model: Model, real: Real, slot: number, action: Action): Promise<void> {
  const p = model.pending[slot] as Pending;
  const rp = real.pending[slot] as RealPending;
  real.pending[slot] = undefined;
  const ch = await prepare(model, p, rp, action.ops);
  const obs = await saveReal(rp, ch, action.delivery);
  settle(model, slot, ch, obs);
  if (action.second && action.delivery !== 'throw') await secondSave(model, real, rp, obs.outcome);
}

/**
 * Real saves that ran at once: the model tries each order they may have
 * taken (the first is the order FerretDB runs them in) and keeps the first
 * whose outcomes and resulting state agree with the store.
 */
async function chooseOrder(model: Model, real: Real, orders: ((candidate: Model) => void)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const order of orders) {
    const candidate = structuredClone(model);
    try {
      candidate.concurrent = true;
      order(candidate);
      candidate.concurrent = false;
      await checkInvariants(candidate, real);
      Object.assign(model, candidate);
      return;
    } catch (error) {
      errors.push(error);
    }
  }
  throw errors[0];
}

/** The invariants, checked after every command. */
async function checkInvariants(model: Model, real: Real): Promise<void> {
  const live = model.sessions.filter((session) => session.state === 'live');
  expect((await real.raw.liveKeys()).sort()).toEqual(live.map((session) => session.realId).sort());
  // Never more live sessions per user than the limit.
  const limit = model.limit;
  if (limit !== undefined) for (const user of users) expect({ user, live: liveOf(model, user).length <= limit.max }).toEqual({ user, live: true });
  expect(await real.store.getActiveSessionsCount()).toBe(live.length);
  const loads = new Map<string, Session<Values>>();
  const open = async (cookie: string) => {
    let session = loads.get(cookie);
    if (session === undefined) {
      session = await real.store.get(requestWith({ [cookieName]: cookie }), cookieName);
      loads.set(cookie, session);
    }
    return session;
  };
  for (const session of live) {
    const stored = await real.raw.record(session.realId);
    const user = session.values.user;
    expect({ id: session.realId, user: stored?.user, provider: stored?.provider }).toEqual({
      id: session.realId,
      user,
      provider: user === undefined ? undefined : provider,
    });
    // A session holding values never lives on the hour a transient save gives.
    expect({ id: session.realId, valuesOnCappedExpiry: session.capped && Object.keys(session.values).length > 0 }).toEqual({
      id: session.realId,
      valuesOnCappedExpiry: false,
    });
    const expiresAt = stored?.expiresAt.getTime() ?? 0;
    expect(expiresAt).toBeGreaterThanOrEqual(session.expiry[0] - expirySlackMs);
    expect(expiresAt).toBeLessThanOrEqual(session.expiry[1] + expirySlackMs);
    const issued = session.issued;
    if (issued === undefined || !model.keys.includes(issued.generation)) continue;
    const loaded = await open(issued.value);
    expectLoad(model, { ...issued, session }, loaded);
    // Reading flashes changes only this request's Session: nothing is saved.
    const flashes: string[] = [];
    for (const key of flashKeys) {
      const got = loaded.flashes<string>(key);
      expect({ key, flashes: sorted(got) }).toEqual({
        key,
        flashes: sorted(session.flashes.filter((flash) => flash.key === key).map((flash) => flash.value)),
      });
      flashes.push(...got);
    }
    // No value or flash written by a save that must not have stored it, nor under a tenure this session never had.
    for (const [key, value] of Object.entries(loaded.values)) {
      if (key !== 'user' && key !== 'provider') expectWrittenHere(model, session, typeof value === 'string' ? value : JSON.stringify(value));
    }
    for (const value of flashes) expectWrittenHere(model, session, value);
  }
  for (const client of model.clients) {
    if (client.cookie !== undefined) expectLoad(model, client.cookie, await open(client.cookie.value));
  }
}

function expectWrittenHere(model: Model, session: ModelSession, value: string): void {
  const n = Number(tagPattern.exec(value)?.[3]);
  const write = model.writes[n];
  expect({ value, stored: write?.stored, ownTenure: write !== undefined && session.history.includes(write.tenure) }).toEqual({
    value,
    stored: true,
    ownTenure: true,
  });
}

/** Rebuilds the store on the same place with the model's key list (a deploy: in-flight requests keep theirs). */
async function rebuildStore(model: Model, real: Real): Promise<void> {
  const keyPairs = model.keys.map((generation) => real.keyPairs.get(generation) as KeyPair);
  real.store = (await real.backend.sessionStore<Values>({ ...real.config, keyPairs }, real.place, false)).store;
}

type Command = fc.AsyncCommand<Model, Real, false>;

/** A base whose run also checks the invariants afterwards. */
abstract class LifecycleCommand implements Command {
  check(_model: Readonly<Model>): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    model.stats.commands++;
    const checked = await this.apply(model, real);
    if (!checked) await checkInvariants(model, real);
  }
  /** Resolves true when it checked the invariants itself (choosing among the orders a race allows). */
  abstract apply(model: Model, real: Real): Promise<boolean>;
  abstract toString(): string;
}

/** A whole request: load, act, save. */
class WholeRequest extends LifecycleCommand {
  constructor(
    readonly client: number,
    readonly stale: boolean,
    readonly action: Action,
  ) {
    super();
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    await load(model, real, this.client, scratch, this.stale, false);
    await finish(model, real, scratch, this.action);
    return false;
  }
  toString(): string {
    return `request(client ${this.client}${this.stale ? ' previous cookie' : ''}: ${describeAction(this.action)})`;
  }
}

/** The first half of an in-flight request: its session is loaded now and saved by a later Finish. */
class Load extends LifecycleCommand {
  constructor(
    readonly client: number,
    readonly slot: number,
    readonly stale: boolean,
  ) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.pending[this.slot] === undefined;
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    await load(model, real, this.client, this.slot, this.stale, true);
    return false;
  }
  toString(): string {
    return `load(client ${this.client}${this.stale ? ' previous cookie' : ''} -> slot ${this.slot})`;
  }
}

class Finish extends LifecycleCommand {
  constructor(
    readonly slot: number,
    readonly action: Action,
  ) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.pending[this.slot] !== undefined;
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    await finish(model, real, this.slot, this.action);
    return false;
  }
  toString(): string {
    return `finish(slot ${this.slot}: ${describeAction(this.action)})`;
  }
}

/** Two in-flight requests saved at once (in turn on FerretDB, whose conditional updates are not atomic). */
class FinishTogether extends LifecycleCommand {
  constructor(
    readonly first: number,
    readonly second: number,
    readonly actions: [Action, Action],
  ) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return this.first !== this.second && model.pending[this.first] !== undefined && model.pending[this.second] !== undefined;
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    const slots = [this.first, this.second] as const;
    const prepared: { rp: RealPending; ch: Changes }[] = [];
    for (const [i, slot] of slots.entries()) {
      const rp = real.pending[slot] as RealPending;
      real.pending[slot] = undefined;
      prepared.push({ rp, ch: await prepare(model, model.pending[slot] as Pending, rp, (this.actions[i] as Action).ops) });
    }
    const observed = await real.backend.saveConcurrently(
      prepared.map(({ rp, ch }, i) => () => saveReal(rp, ch, (this.actions[i] as Action).delivery)),
    );
    const step = (candidate: Model, i: 0 | 1) => settle(candidate, slots[i], (prepared[i] as { ch: Changes }).ch, observed[i] as Observed);
    await chooseOrder(model, real, [
      (candidate) => {
        step(candidate, 0);
        step(candidate, 1);
      },
      (candidate) => {
        step(candidate, 1);
        step(candidate, 0);
      },
    ]);
    model.stats.concurrentFinishes++;
    return true;
  }
  toString(): string {
    return `finishTogether(slot ${this.first}: ${describeAction(this.actions[0])} | slot ${this.second}: ${describeAction(this.actions[1])})`;
  }
}

/** A sign-in (regenerating save) and a forced logout of the signing-in user, truly concurrent: either may win. */
class RaceSignInWithLogout extends LifecycleCommand {
  constructor(
    readonly client: number,
    readonly user: string,
  ) {
    super();
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    await load(model, real, this.client, scratch, false, false);
    const rp = real.pending[scratch] as RealPending;
    real.pending[scratch] = undefined;
    const ch = await prepare(model, model.pending[scratch] as Pending, rp, [{ kind: 'sign-in', user: this.user, regenerate: true }]);
    const [obs] = await Promise.all([saveReal(rp, ch, 'ok'), real.store.expireSessions(this.user, provider)]);
    await chooseOrder(model, real, [
      (candidate) => {
        logout(candidate, this.user);
        settle(candidate, scratch, ch, obs);
      },
      (candidate) => {
        settle(candidate, scratch, ch, obs);
        logout(candidate, this.user);
      },
    ]);
    model.stats.races++;
    return true;
  }
  toString(): string {
    return `raceSignInWithLogout(client ${this.client}, ${this.user})`;
  }
}

/** Forced logout of an owner of a live session. */
class ForcedLogout extends LifecycleCommand {
  constructor(readonly user: string) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.sessions.some((session) => session.state === 'live' && session.values.user === this.user);
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    const expected = model.sessions.filter((session) => session.state === 'live' && session.values.user === this.user).length;
    expect(await real.store.expireSessions(this.user, provider)).toBe(expected);
    model.stats.forcedLogouts += logout(model, this.user);
    return false;
  }
  toString(): string {
    return `expireSessions(${this.user})`;
  }
}

/** A live session expires (its record's expiry passes): with `inFlight`, one an in-flight request loaded, when there is one. */
class Expire extends LifecycleCommand {
  constructor(
    readonly inFlight: boolean,
    readonly pick: number,
  ) {
    super();
  }
  targets(model: Readonly<Model>): ModelSession[] {
    const loaded = this.inFlight ? model.pending.flatMap((p) => (p?.loaded?.state === 'live' ? [p.loaded] : [])) : [];
    return loaded.length > 0 ? loaded : model.sessions.filter((session) => session.state === 'live');
  }
  override check(model: Readonly<Model>): boolean {
    return this.targets(model).length > 0;
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    const targets = this.targets(model);
    const session = targets[this.pick % targets.length] as ModelSession;
    await real.raw.setExpiry(session.realId, new Date(Date.now() - 1000));
    session.state = 'dead';
    model.stats.expiries++;
    return false;
  }
  toString(): string {
    return `expire(live session #${this.pick}${this.inFlight ? ' of those in-flight requests loaded' : ''})`;
  }
}

/** A new key pair in front of the list: a deploy restarts the store; in-flight requests keep their store. */
class AddKey extends LifecycleCommand {
  override check(model: Readonly<Model>): boolean {
    return model.keys.length < 3;
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    const generation = model.nextKey++;
    real.keyPairs.set(generation, { authentication: randomKey(), encryption: randomKey() });
    model.keys.unshift(generation);
    await rebuildStore(model, real);
    return false;
  }
  toString(): string {
    return 'addKey()';
  }
}

/** The oldest pair dropped: cookies sealed under it lead nowhere. */
class DropOldestKey extends LifecycleCommand {
  override check(model: Readonly<Model>): boolean {
    return model.keys.length > 1;
  }
  async apply(model: Model, real: Real): Promise<boolean> {
    model.keys.pop();
    await rebuildStore(model, real);
    return false;
  }
  toString(): string {
    return 'dropOldestKey()';
  }
}

function describeOp(op: Op): string {
  switch (op.kind) {
    case 'set':
      return `set ${op.key}`;
    case 'delete':
      return `delete ${op.key}`;
    case 'add-flash':
      return `addFlash ${op.key}`;
    case 'read-flashes':
      return `read flashes ${op.key}`;
    case 'sign-in':
      return `sign in as ${op.user}${op.regenerate ? ' +regenerate' : ''}`;
    case 'sign-out':
      return `sign out by clearing${op.regenerate ? ' +regenerate' : ''}`;
    case 'lifetime':
      return `lifetime ${lifetimeOf(op.choice).maxAge}s${lifetimeOf(op.choice).persistent ? '' : ' browser-session'}`;
    case 'regenerate':
      return 'regenerate';
    case 'destroy':
      return op.flash ? 'destroy, new + addFlash, saveAll' : 'destroy';
  }
}

function describeAction(action: Action): string {
  const ops = action.ops.length === 0 ? 'nothing' : action.ops.map(describeOp).join(', ');
  const delivery = action.delivery === 'ok' ? '' : action.delivery === 'lost' ? '; response lost' : '; target throws, saved again';
  return `${ops}${delivery}${action.second ? '; second save' : ''}`;
}

const opOrder: Record<Op['kind'], number> = {
  'read-flashes': 0,
  set: 1,
  delete: 1,
  'sign-in': 1,
  'sign-out': 1,
  lifetime: 1,
  regenerate: 1,
  destroy: 1,
  'add-flash': 2,
};

/** At most one owner change per request; flashes read before any is added. */
function normalize(ops: Op[]): Op[] {
  const owner = ops.find((op) => op.kind === 'sign-in' || op.kind === 'sign-out');
  return ops.filter((op) => (op.kind !== 'sign-in' && op.kind !== 'sign-out') || op === owner).sort((a, b) => opOrder[a.kind] - opOrder[b.kind]);
}

/** Client 0 more often: its session meets more parallel requests. */
const client = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: clientCount - 1 }) });
const slot = fc.integer({ min: 0, max: slotCount - 1 });
const user = fc.constantFrom(...users);
const stale = fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
/** With `regenerate()` one time in three. */
const regenerate = fc.oneof({ weight: 2, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...valueKeys).map((key): Op => ({ kind: 'set', key })) },
  { weight: 2, arbitrary: fc.constantFrom(...valueKeys).map((key): Op => ({ kind: 'delete', key })) },
  { weight: 4, arbitrary: fc.constantFrom(...flashKeys).map((key): Op => ({ kind: 'add-flash', key })) },
  { weight: 4, arbitrary: fc.constantFrom(...flashKeys).map((key): Op => ({ kind: 'read-flashes', key })) },
  { weight: 3, arbitrary: fc.tuple(user, regenerate).map(([name, regen]): Op => ({ kind: 'sign-in', user: name, regenerate: regen })) },
  { weight: 2, arbitrary: regenerate.map((regen): Op => ({ kind: 'sign-out', regenerate: regen })) },
  { weight: 3, arbitrary: fc.constantFrom<LifetimeChoice>(0, 1, 2).map((choice): Op => ({ kind: 'lifetime', choice })) },
  { weight: 1, arbitrary: fc.constant<Op>({ kind: 'regenerate' }) },
);
const ops: fc.Arbitrary<Op[]> = fc.oneof(
  { weight: 32, arbitrary: fc.array(op, { minLength: 1, maxLength: 3 }).map(normalize) },
  { weight: 1, arbitrary: fc.boolean().map((flash): Op[] => [{ kind: 'destroy', flash }]) },
  { weight: 2, arbitrary: fc.constant<Op[]>([]) },
);
const delivery = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Action['delivery']>('ok') },
  { weight: 3, arbitrary: fc.constant<Action['delivery']>('lost') },
  { weight: 2, arbitrary: fc.constant<Action['delivery']>('throw') },
);
const second = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const action: fc.Arbitrary<Action> = fc.record({ ops, delivery, second });
/** Saved at once with another: no throwing target, no second save, no saveAll. */
const concurrentAction: fc.Arbitrary<Action> = fc.record({
  ops: ops.map((list) => list.map((item): Op => (item.kind === 'destroy' ? { kind: 'destroy', flash: false } : item))),
  delivery: fc.constantFrom<Action['delivery']>('ok', 'ok', 'lost'),
  second: fc.constant(false),
});

/** Weighted toward in-flight requests: loads, and finishes of what was loaded. */
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 48, arbitrary: fc.tuple(client, slot, stale).map(([c, s, old]) => new Load(c, s, old)) },
  { weight: 44, arbitrary: fc.tuple(slot, action).map(([s, a]) => new Finish(s, a)) },
  { weight: 12, arbitrary: fc.tuple(slot, slot, concurrentAction, concurrentAction).map(([a, b, x, y]) => new FinishTogether(a, b, [x, y])) },
  { weight: 28, arbitrary: fc.tuple(client, stale, action).map(([c, old, a]) => new WholeRequest(c, old, a)) },
  { weight: 3, arbitrary: fc.tuple(fc.boolean(), fc.nat(5)).map(([inFlight, pick]) => new Expire(inFlight, pick)) },
  { weight: 3, arbitrary: user.map((name) => new ForcedLogout(name)) },
  { weight: 3, arbitrary: fc.constant(new AddKey()) },
  { weight: 3, arbitrary: fc.constant(new DropOldestKey()) },
  { weight: 2, arbitrary: fc.tuple(client, user).map(([c, u]) => new RaceSignInWithLogout(c, u)) },
);

/**
 * Fixed seed and number of runs: the same runs every time, never cut short
 * by a clock (about 100 s on FerretDB, 40 s on PostgreSQL).
 * MONGOSTORE_MODEL_SEED explores other seeds.
 */
const seed = Number(process.env.MONGOSTORE_MODEL_SEED ?? 20261123);
const numRuns = 250;
/** Runs under a session limit (fewer: the limit's cases come up in every run). */
const limitRuns = 100;
const maxCommands = 120;
const commands = fc.commands([command], { maxCommands, size: 'max' });

function initialModel(config: Partial<SessionStoreConfig>): Model {
  const { maxSessionsPerUser: max, onSessionLimit: policy = 'evict-oldest' } = config;
  return {
    limit: max === undefined ? undefined : { max, policy },
    nextWrite: 1,
    concurrent: false,
    sessions: [],
    clients: Array.from({ length: clientCount }, () => ({ cookie: undefined, previous: undefined })),
    pending: Array.from({ length: slotCount + 1 }, () => undefined),
    keys: [0],
    nextKey: 1,
    nextTenure: 1,
    nextTag: 1,
    writes: {},
    stats: zeroStats(),
  };
}

describe.each(backends)('session lifecycle model on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  /** Runs the model `numRuns` times, each on a fresh place with the store configuration `configOf(run)`; checks the minimums. */
  async function runModel(label: string, runCount: number, configOf: (run: number) => Partial<SessionStoreConfig>, least: Partial<Stats>) {
    const started = Date.now();
    const totals = zeroStats();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        runs++;
        const place = `lifecycle_${runs}_${Math.random().toString(36).slice(2, 8)}`;
        const first = { authentication: randomKey(), encryption: randomKey() };
        const config = configOf(runs);
        const { store, raw } = await backend.sessionStore<Values>({ ...config, keyPairs: [first] }, place);
        const model = initialModel(config);
        const real: Real = {
          backend,
          config,
          place,
          raw,
          store,
          keyPairs: new Map([[0, first]]),
          pending: Array.from({ length: slotCount + 1 }, () => undefined),
        };
        // Every run starts with two sessions: client 0 anonymous with a cart and a flash, client 1 signed in as alice.
        await new WholeRequest(0, false, { ops: [{ kind: 'set', key: 'cart' }, { kind: 'add-flash', key: 'notice' }], delivery: 'ok', second: false }).run(model, real);
        await new WholeRequest(1, false, { ops: [{ kind: 'sign-in', user: 'alice', regenerate: true }, { kind: 'set', key: 'theme' }], delivery: 'ok', second: false }).run(model, real);
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        for (const key of Object.keys(totals) as (keyof Stats)[]) totals[key] += model.stats[key];
      }),
      { seed, numRuns: runCount },
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`lifecycle model ${label} on ${backend.name}: ${runs} runs, seed ${seed}, ${seconds} s\n${JSON.stringify(totals)}`);
    expect(runs).toBe(runCount);
    const met = Object.fromEntries(Object.keys(least).map((key) => [key, totals[key as keyof Stats]]));
    const below = Object.entries(least).filter(([key, min]) => totals[key as keyof Stats] < min);
    expect(below, `below the minimums: ${JSON.stringify(met)}`).toEqual([]);
  }

  it('agrees with the model after every command', async () => {
    await runModel('without a limit', numRuns, () => ({}), minimums);
  }, 600_000);

  it('agrees with the model under a session limit of one per user (runs alternate evict-oldest and refuse)', async () => {
    await runModel(
      'with maxSessionsPerUser 1',
      limitRuns,
      (run) => ({ maxSessionsPerUser: 1, onSessionLimit: run % 2 === 0 ? 'evict-oldest' : 'refuse' }),
      limitMinimums,
    );
  }, 600_000);
});
