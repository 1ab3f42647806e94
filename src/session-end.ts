/**
 * How a save ends without storing its session: the terminal outcomes
 * (`deleted`, `expired`, `superseded`, `limited`) and the empty new session
 * that is not stored. Each says what the browser's cookie becomes.
 */
import { appendSetCookie, type CookieTarget, expiredCookie } from './cookies.ts';
import { type SaveOutcome, type Session, sessionState } from './session.ts';

/**
 * Terminal: later saves resolve `outcome` again and write nothing. The
 * browser's cookie is expired (`clear`), except by default when the
 * session was superseded: the browser then holds the cookie a parallel
 * request gave it, which a clearing cookie arriving later would delete.
 */
export function end(target: CookieTarget, session: Session, outcome: SaveOutcome, clear = outcome !== 'superseded'): SaveOutcome {
  // The cookie first: if the target throws, a retried save sends it again.
  if (clear) appendSetCookie(target, expiredCookie(session.name, session.options));
  session[sessionState].ended = outcome;
  return outcome;
}

/** A new session that is still empty is not stored; a dead cookie the request carried is cleared. */
export function skipEmpty(target: CookieTarget, session: Session): SaveOutcome {
  const state = session[sessionState];
  if (state.deadCookie) {
    appendSetCookie(target, expiredCookie(session.name, session.options));
    state.deadCookie = false;
  }
  return 'unchanged';
}

/**
 * Whether `new` gives a fresh session after a save ended with `outcome`:
 * after a sign-out or an expiry; not after `'superseded'` (the browser
 * holds another request's session) or `'limited'` (it holds what it held
 * before the refused sign-in, or a cookie that now gives a fresh session).
 */
export function startsAfresh(outcome: SaveOutcome | undefined): boolean {
  return outcome !== undefined && outcome !== 'superseded' && outcome !== 'limited';
}

/**
 * A sign-in the session limit withdrew after its write (its session went
 * with the excess): ended before the clearing cookie is handed over, so a
 * save retried after a target that threw writes nothing again.
 */
export function withdrawn(target: CookieTarget, session: Session): SaveOutcome {
  session[sessionState].ended = 'limited';
  return end(target, session, 'limited');
}
