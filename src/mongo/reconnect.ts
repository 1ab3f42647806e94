/**
 * A remedy for a defect of the MongoDB Node driver (6.x and 7.x): after the
 * server closes its connections (a restart), the driver's polling monitor
 * can hang for good, and the client never finds the server again until it
 * is closed and connected again. How it happens, and the upstream fix, are
 * in docs/production.md ("After a database restart"); test/server.test.ts
 * pins it. Polling is what the driver does against FerretDB (its `hello`
 * has no `topologyVersion`) and with `serverMonitoringMode: 'poll'`.
 */
import type { MongoClient, ServerHeartbeatFailedEvent, ServerHeartbeatStartedEvent, ServerHeartbeatSucceededEvent } from 'mongodb';

/** Options of {@link reconnectWhenMonitorHangs}. */
export interface MonitorWatchOptions {
  /**
   * How long a polled server check may run before it counts as hung.
   * Default `2 × connectTimeoutMS + 1000` (a healthy check is bounded by
   * `connectTimeoutMS` for the connect and again for the handshake), or a
   * minute with `connectTimeoutMS: 0`. Streaming checks (MongoDB 4.4+),
   * which wait for news by design, are not timed.
   */
  stuckAfterMs?: number | undefined;
  /** Called after each reconnect, with the error when it failed (the watch goes on either way). */
  onReconnect?: ((error?: unknown) => void) | undefined;
}

/**
 * Watches `client`'s server checks (heartbeats, each server's on its own)
 * and, when a polled one has not ended `stuckAfterMs` after it started,
 * closes the client and connects it again:
 * every `Db`, collection and store built on it keeps working. Checks once a
 * second on an unreferenced timer (it never keeps the process alive).
 * @returns a function that stops watching.
 * @throws TypeError when `stuckAfterMs` is not a positive number.
 */
export function reconnectWhenMonitorHangs(client: MongoClient, options: MonitorWatchOptions = {}): () => void {
  const connectTimeoutMS = client.options.connectTimeoutMS;
  // connectTimeoutMS 0 bounds nothing: a minute, unless the app says.
  const stuckAfterMs = options.stuckAfterMs ?? (connectTimeoutMS > 0 ? 2 * connectTimeoutMS + 1000 : 60_000);
  if (typeof stuckAfterMs !== 'number' || !(stuckAfterMs > 0) || !Number.isFinite(stuckAfterMs)) {
    throw new TypeError('reconnectWhenMonitorHangs: stuckAfterMs must be a positive number of milliseconds');
  }
  /** When each server's check in progress started (performance.now()), by address. */
  const checks = new Map<string, number>();
  // A streaming monitor's awaited check lasts up to heartbeatFrequencyMS by
  // design: only polled checks are bounded by connectTimeoutMS.
  const started = (event: ServerHeartbeatStartedEvent) => {
    if (!event.awaited && !checks.has(event.connectionId)) checks.set(event.connectionId, performance.now());
  };
  const ended = (event: ServerHeartbeatSucceededEvent | ServerHeartbeatFailedEvent) => void checks.delete(event.connectionId);
  const closed = () => checks.clear();
  client.on('serverHeartbeatStarted', started);
  client.on('serverHeartbeatSucceeded', ended);
  client.on('serverHeartbeatFailed', ended);
  client.on('topologyClosed', closed);
  const tickMs = Math.min(1000, stuckAfterMs);
  let lastTick = performance.now();
  let reconnecting = false;
  let stopped = false;
  const timer = setInterval(() => {
    const now = performance.now();
    // A tick that comes late (the event loop was blocked) says nothing about
    // the checks: their events could not be delivered either.
    const late = now - lastTick > 2 * tickMs + 1000;
    lastTick = now;
    if (late || reconnecting || stopped) return;
    if (![...checks.values()].some((startedAt) => now - startedAt >= stuckAfterMs)) return;
    reconnecting = true;
    checks.clear();
    client
      .close()
      .then(() => (stopped ? undefined : client.connect()))
      .then(
        () => options.onReconnect?.(),
        (error: unknown) => options.onReconnect?.(error),
      )
      .catch(() => {}) // a throwing onReconnect must not leave an unhandled rejection
      .finally(() => {
        reconnecting = false;
      });
  }, tickMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    client.off('serverHeartbeatStarted', started);
    client.off('serverHeartbeatSucceeded', ended);
    client.off('serverHeartbeatFailed', ended);
    client.off('topologyClosed', closed);
  };
}
