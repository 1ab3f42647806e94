/**
 * Devices: what a "your devices" page shows of each of a user's sessions,
 * and the handle that names a session there.
 *
 * A handle is a random public name stored beside the session (not derived
 * from its id): knowing one gives no access and cannot be turned into a
 * cookie. It is new with every id, so `regenerate()` gives a new one.
 */
import type { DeviceFields, DeviceRecord } from './backend.ts';
import { SessionValuesError } from './errors.ts';
import { randomText } from './random.ts';

/** What an app records about a session's device, through the store's `describeDevice`. */
export type DeviceDetails = Record<string, string | number | boolean>;

/** What `describeDevice` may return: details, where null and undefined fields are left out. */
export type DeviceDetailsInput = Record<string, string | number | boolean | null | undefined>;

/** One of a user's live sessions as `listSessions` gives it: never its id or its values. */
export interface DeviceInfo {
  /** Names the session in pages and forms; pass it to `revokeSession`. Not a credential. */
  handle: string;
  /** When the session was first saved (it may have begun anonymous, before a sign-in). */
  createdAt: Date;
  /**
   * When its owner signed in: the save that gave the session this
   * `user`/`provider`. Absent for sessions saved before this was recorded.
   */
  signedInAt?: Date;
  /** Its last write: a changed save or an expiry refresh. Read-only requests do not move it. */
  lastSeenAt: Date;
  expiresAt: Date;
  /** The User-Agent it was created with, at most {@link maxUserAgentLength} characters. */
  userAgent?: string;
  /** What `describeDevice` recorded when it was created. */
  details?: DeviceDetails;
}

/** Longest User-Agent kept, in characters. */
export const maxUserAgentLength = 256;
/** Largest `describeDevice` result kept, in bytes of JSON. */
export const maxDeviceDetailsBytes = 1024;

const handlePattern = /^[A-Za-z0-9_-]{22}$/;

/** A new handle: 128 random bits, base64url (22 characters). */
export function newHandle(): string {
  return randomText(16);
}

/** Whether `value` has the shape of a handle (so it is a plain string, never an operator). */
export function isHandle(value: unknown): value is string {
  return typeof value === 'string' && handlePattern.test(value);
}

/**
 * The device fields of a session created by `request`: a new handle, the
 * User-Agent (cut to {@link maxUserAgentLength}), and the app's details.
 * Details are kept within bounds rather than failing a sign-in on what a
 * client sent: null and undefined fields are left out, strings are cut to
 * {@link maxUserAgentLength} characters, and fields that would take the
 * JSON past {@link maxDeviceDetailsBytes} bytes are left out.
 * @throws SessionValuesError when `describeDevice` returns something other
 * than a flat object of strings, finite numbers, booleans (and null or
 * undefined); nothing is written.
 */
export function deviceFieldsFor(
  request: Request,
  describeDevice: ((request: Request) => DeviceDetailsInput | undefined) | undefined,
): DeviceFields {
  const userAgent = request.headers.get('user-agent')?.slice(0, maxUserAgentLength) || undefined;
  const described: unknown = describeDevice?.(request);
  return { handle: newHandle(), userAgent, details: described === undefined ? undefined : detailsText(described) };
}

/** A stored device record as `listSessions` gives it. */
export function toDeviceInfo(record: DeviceRecord): DeviceInfo {
  const info: DeviceInfo = {
    handle: record.handle,
    createdAt: record.createdAt,
    lastSeenAt: record.lastSeenAt,
    expiresAt: record.expiresAt,
  };
  if (record.signedInAt !== undefined) info.signedInAt = record.signedInAt;
  if (record.userAgent !== undefined) info.userAgent = record.userAgent;
  if (record.details !== undefined) {
    try {
      info.details = JSON.parse(record.details) as DeviceDetails;
    } catch {
      // Not written by this store: left out rather than failing the page.
    }
  }
  return info;
}

function detailsText(details: unknown): string {
  if (details === null || typeof details !== 'object' || Array.isArray(details) || Object.getPrototypeOf(details) !== Object.prototype) {
    throw new SessionValuesError('describeDevice must return a plain object or undefined');
  }
  const kept: DeviceDetails = {};
  for (const [key, value] of Object.entries(details)) {
    if (value === null || value === undefined) continue;
    if (!['string', 'number', 'boolean'].includes(typeof value) || (typeof value === 'number' && !Number.isFinite(value))) {
      throw new SessionValuesError(`describeDevice: ${JSON.stringify(key)} must be a string, a finite number or a boolean`);
    }
    const field = typeof value === 'string' ? value.slice(0, maxUserAgentLength) : (value as number | boolean);
    const candidate = { ...kept, [key]: field };
    if (Buffer.byteLength(JSON.stringify(candidate)) <= maxDeviceDetailsBytes) Object.assign(kept, { [key]: field });
  }
  return JSON.stringify(kept);
}

/** Most sessions `listSessions` gives unless asked for fewer or more, and the most it gives. */
const defaultListLimit = 100;
const maxListLimit = 1000;

/**
 * The number of sessions `listSessions` gives for its `limit` option.
 * @throws TypeError for a limit that is not a whole number from 1 to 1,000.
 */
export function listLimitOf(limit: number | undefined): number {
  const checked = limit ?? defaultListLimit;
  if (!Number.isInteger(checked) || checked < 1 || checked > maxListLimit) {
    throw new TypeError(`listSessions: limit must be a whole number from 1 to ${maxListLimit}`);
  }
  return checked;
}
