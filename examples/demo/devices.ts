/**
 * What the devices page shows of a session: "Chrome on Linux" rather than
 * a User-Agent string, "5 minutes ago" rather than an ISO timestamp.
 *
 * The User-Agent is parsed when the page is rendered, not when the session
 * is created: the store keeps the header as it came (256 characters at
 * most), so every session, old ones too, gets what the parser knows today.
 * Parsing is bowser's (MIT, a dev dependency of this repository: the
 * library itself does not need it).
 */
import Bowser from 'bowser';
import type { DeviceInfo } from '../../src/index.ts';

/** "Chrome on Linux", "Safari on iOS", "a browser on Windows", or "Unknown browser". */
export function deviceName(userAgent: string | undefined): string {
  if (userAgent === undefined || userAgent === '') return 'Unknown browser';
  const { browser, os } = Bowser.parse(userAgent);
  const browserName = browser.name || undefined;
  const osName = os.name || undefined;
  if (browserName !== undefined && osName !== undefined) return `${browserName} on ${osName}`;
  if (browserName !== undefined) return browserName;
  if (osName !== undefined) return `A browser on ${osName}`;
  return 'Unknown browser';
}

/**
 * When the device's current owner signed in. `signedInAt` is absent for
 * sessions written before it was recorded: those fall back to `createdAt`,
 * when the session began (for a sign-in through `regenerate()`, the
 * anonymous session before it).
 */
export function signedInAt(device: DeviceInfo): Date {
  return device.signedInAt ?? device.createdAt;
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const units: ReadonlyArray<readonly [Intl.RelativeTimeFormatUnit, number]> = [
  ['year', 365 * 86_400],
  ['month', 30 * 86_400],
  ['week', 7 * 86_400],
  ['day', 86_400],
  ['hour', 3_600],
  ['minute', 60],
];

/**
 * `date` relative to `now`, in the largest whole unit: "just now",
 * "42 seconds ago", "5 minutes ago", "yesterday", "3 weeks ago" (or "in 2
 * days" for a future date).
 */
export function timeAgo(date: Date, now: Date = new Date()): string {
  const seconds = (date.getTime() - now.getTime()) / 1000;
  if (Math.abs(seconds) < 10) return 'just now';
  for (const [unit, size] of units) {
    // Whole units elapsed, as people count them: 5 minutes 50 seconds is "5 minutes ago".
    if (Math.abs(seconds) >= size) return relative.format(Math.trunc(seconds / size), unit);
  }
  return relative.format(Math.trunc(seconds), 'second');
}
