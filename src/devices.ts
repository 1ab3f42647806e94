/**
 * Devices: what a "your devices" page shows of each of a user's sessions,
 * and the handle that names a session there.
 *
 * A handle is a random public name stored beside the session (not derived
 * from its id): knowing one gives no access and cannot be turned into a
 * cookie. It is new with every id, so `regenerate()` gives a new one.
 */
import { randomBytes } from 'node:crypto';
import type { DeviceFields, DeviceRecord } from './backend.ts';
import { SessionValuesError } from './errors.ts';

/** What an app records about a session's device, through the store's `describeDevice`. */
export type DeviceDetails = Record<string, string | number | boolean>;

/** One of a user's live sessions as `listSessions` gives it: never its id or its values. */
export interface DeviceInfo {
  /** Names the session in pages and forms; pass it to `revokeSession`. Not a credential. */
  handle: string;
  /** When the session was first saved. */
  createdAt: Date;
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
  return randomBytes(16).toString('base64url');
}

/** Whether `value` has the shape of a handle (so it is a plain string, never an operator). */
export function isHandle(value: unknown): value is string {
  return typeof value === 'string' && handlePattern.test(value);
}

/**
 * The device fields of a session created by `request`: a new handle, the
 * User-Agent (cut to {@link maxUserAgentLength}), and the app's details.
 * @throws SessionValuesError when `describeDevice` returns something other
 * than a flat object of strings, numbers and booleans of at most
 * {@link maxDeviceDetailsBytes} bytes of JSON; nothing is written.
 */
export function deviceFieldsFor(
  request: Request,
  describeDevice: ((request: Request) => DeviceDetails | undefined) | undefined,
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
  for (const [key, value] of Object.entries(details)) {
    if (!['string', 'number', 'boolean'].includes(typeof value) || (typeof value === 'number' && !Number.isFinite(value))) {
      throw new SessionValuesError(`describeDevice: ${JSON.stringify(key)} must be a string, a finite number or a boolean`);
    }
  }
  const text = JSON.stringify(details);
  if (Buffer.byteLength(text) > maxDeviceDetailsBytes) {
    throw new SessionValuesError(`describeDevice returned more than ${maxDeviceDetailsBytes} bytes of JSON`);
  }
  return text;
}
