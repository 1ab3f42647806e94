/**
 * Random bytes for session ids, device handles, flash ids and IVs, from
 * node:crypto's CSPRNG, drawn a batch at a time.
 *
 * Why a batch: each `randomBytes` call is a trip into OpenSSL that costs
 * about 2 µs whatever its size, and a new session needs three (id, handle,
 * IV), a quarter of its whole cost before this. Node's own
 * `crypto.randomUUID()` keeps a batch for the same reason. Every byte is
 * handed out once and never again; callers get a copy of their own, so
 * nothing they do reaches the batch. The price, as with `randomUUID`: up to
 * 4 KB of bytes not yet handed out (the next ids, handles and IVs) sit in
 * the process's memory, where a heap snapshot or core dump would show them.
 */
import { randomBytes } from 'node:crypto';

/** Bytes drawn from the CSPRNG per refill: 64 new sessions' worth. */
const batchBytes = 4096;

let batch = Buffer.alloc(0);
let offset = 0;

/**
 * `count` bytes from the CSPRNG (at most 4096), as a Buffer of their own.
 * @throws RangeError for a count outside 0..4096.
 */
export function randomBytesBatched(count: number): Buffer {
  if (!Number.isInteger(count) || count < 0 || count > batchBytes) throw new RangeError(`randomBytesBatched: ${count} is not in 0..${batchBytes}`);
  if (offset + count > batch.byteLength) {
    batch = randomBytes(batchBytes);
    offset = 0;
  }
  // A buffer of its own (Buffer.from would copy into Node's shared pool).
  const bytes = Buffer.alloc(count);
  batch.copy(bytes, 0, offset, offset + count);
  // What was handed out is overwritten in the batch, so no later reader of
  // this memory can learn it.
  batch.fill(0, offset, offset + count);
  offset += count;
  return bytes;
}

/** `count` random bytes as base64url text (no padding). */
export function randomText(count: number): string {
  return randomBytesBatched(count).toString('base64url');
}
