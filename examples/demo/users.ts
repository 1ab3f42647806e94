/**
 * The demo's users: a few accounts whose passwords are new at every start
 * (main.ts prints them). The app keeps only a salted scrypt hash of each
 * password, never the password itself, and compares hashes in constant time.
 *
 * A real app keeps such hashes in its database; everything else here (a
 * random salt per user, scrypt's cost, the constant-time compare, the same
 * work for an unknown user as for a wrong password) carries over as it is.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** An account as main.ts makes and prints it, before it is hashed. */
export interface DemoAccount {
  readonly name: string;
  readonly password: string;
  /** May see `/admin/sessions`. */
  readonly admin: boolean;
}

/** A user as the app keeps one: the password only as salt and scrypt hash. */
export interface DemoUser {
  readonly name: string;
  readonly admin: boolean;
}

export interface PasswordHash {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** Longest password the sign-in accepts, in characters: scrypt never runs on a megabyte someone posted. */
export const maxPasswordLength = 256;

/**
 * scrypt's cost: 2^15 x 8 x 128 bytes = 32 MiB of memory per hash, about
 * 100-300 ms of one core on the demo's machines, run on libuv's thread pool
 * (the async `scrypt`, so a sign-in never blocks other requests). That is
 * the library's own passphrase cost; for stored passwords OWASP's cheat
 * sheet asks for at least N = 2^17 (128 MiB) or, at this N, p = 3: a real
 * app chooses with its hardware and sign-in rate in mind, and keeps the
 * parameters beside each hash so it can raise them later.
 */
const scryptOptions = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const hashBytes = 32;
const saltBytes = 16;

/** Alice is the admin; the others are plain users. */
const demoNames: ReadonlyArray<readonly [string, boolean]> = [
  ['alice', true],
  ['bob', false],
  ['carol', false],
  ['dave', false],
];

/** The demo's accounts with fresh random passwords (96 bits each, base64url). */
export function newDemoAccounts(): DemoAccount[] {
  return demoNames.map(([name, admin]) => ({ name, admin, password: randomBytes(12).toString('base64url') }));
}

/** The users the demo signs in, holding only password hashes. */
export class DemoUsers {
  readonly #users: Map<string, DemoUser & PasswordHash>;
  /** Checked for a name that is no user, so that costs what a wrong password does. */
  readonly #decoy: PasswordHash;

  private constructor(users: Map<string, DemoUser & PasswordHash>, decoy: PasswordHash) {
    this.#users = users;
    this.#decoy = decoy;
  }

  /** Hashes each account's password with a salt of its own. */
  static async create(accounts: readonly DemoAccount[]): Promise<DemoUsers> {
    const [decoy, ...hashes] = await Promise.all([
      hashPassword(randomBytes(12).toString('base64url')),
      ...accounts.map((account) => hashPassword(account.password)),
    ]);
    const users = new Map<string, DemoUser & PasswordHash>();
    accounts.forEach((account, index) => {
      const hash = hashes[index];
      if (hash === undefined) throw new Error('unreachable: one hash per account');
      users.set(account.name, { name: account.name, admin: account.admin, ...hash });
    });
    if (decoy === undefined) throw new Error('unreachable: the decoy hash');
    return new DemoUsers(users, decoy);
  }

  /**
   * The user when `password` is theirs, else undefined. An unknown name
   * costs one scrypt too, so timing does not tell which names exist.
   */
  async authenticate(name: string, password: string): Promise<DemoUser | undefined> {
    const user = this.#users.get(name);
    const matches = await verifyPassword(password, user ?? this.#decoy);
    return matches && user !== undefined ? { name: user.name, admin: user.admin } : undefined;
  }

  /**
   * Whether `name` is an admin now: asked on every request rather than kept
   * in the session, so a changed role applies at once.
   */
  isAdmin(name: string | undefined): boolean {
    return name !== undefined && this.#users.get(name)?.admin === true;
  }
}

/** A new random salt and the scrypt hash of `password` with it. */
export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(saltBytes);
  return { salt, hash: await derive(password, salt) };
}

/** Whether `password` hashes to `stored.hash` with its salt; compared in constant time. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const candidate = await derive(password, stored.salt);
  return candidate.length === stored.hash.length && timingSafeEqual(candidate, stored.hash);
}

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // NFC: the same password typed on another keyboard or system hashes the same.
    scrypt(password.normalize('NFC'), salt, hashBytes, scryptOptions, (error, key) => (error ? reject(error) : resolve(key)));
  });
}
