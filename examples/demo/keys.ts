/**
 * Key pairs for the demo from the environment.
 *
 * MONGOSTORE_KEYS holds one or more pairs separated by commas; a pair is
 * `AUTH` or `AUTH:ENC`, each a base64url (or base64) string of at least 32
 * random bytes. The first pair seals new cookies; every pair unseals. Make a
 * key with:  node -e "console.log(crypto.randomBytes(32).toString('base64url'))"
 */
import { randomBytes } from 'node:crypto';
import type { KeyPair } from '../../src/index.ts';

/**
 * Parses MONGOSTORE_KEYS; without it, a random development key that lives
 * only as long as the process (every restart signs everyone out).
 * @throws Error naming the malformed pair.
 */
export function keyPairsFromEnvironment(value: string | undefined, warn: (message: string) => void): KeyPair[] {
  if (value === undefined || value.trim() === '') {
    warn(
      [
        '!'.repeat(72),
        '!! MONGOSTORE_KEYS is not set: using a random development key.',
        '!! Sessions will not survive a restart. Never run like this in production.',
        '!'.repeat(72),
      ].join('\n'),
    );
    return [{ authentication: new Uint8Array(randomBytes(32)) }];
  }
  return value.split(',').map((pair, index) => {
    const [authentication, encryption, ...rest] = pair.trim().split(':');
    if (!authentication || rest.length > 0) {
      throw new Error(`MONGOSTORE_KEYS pair ${index + 1}: expected AUTH or AUTH:ENC`);
    }
    return {
      authentication: decodeKey(authentication, index),
      ...(encryption ? { encryption: decodeKey(encryption, index) } : {}),
    };
  });
}

function decodeKey(text: string, index: number): Uint8Array {
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.byteLength < 32) {
    throw new Error(`MONGOSTORE_KEYS pair ${index + 1}: a key must decode to at least 32 bytes`);
  }
  return new Uint8Array(bytes);
}
