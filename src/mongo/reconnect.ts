/**
 * A remedy for a defect of the MongoDB Node driver (6.x and 7.x): after the
 * server closes its connections (a restart), the driver's polling monitor
 * can hang for good, and the client never finds the server again until it
 * is closed and connected again. How it happens, and the upstream fix, are
 * in docs/production.md ("After a database restart"); test/server.test.ts
 * pins it. Polling is what the driver does against FerretDB (its `hello`
 * has no `topologyVersion`) and with `serverMonitoringMode: 'poll'`.
 */
import type { MongoClient } from 'mongodb';

/** Options of {@link reconnectWhenMonitorHangs}. */
export interface MonitorWatchOptions {
  /**
   * How long a server check may run before it counts as hung. Default
   * `2 × connectTimeoutMS + 1000`: a healthy check is bounded by
   * `connectTimeoutMS` for the connect and again for the handshake.
   */
  stuckAfterMs?: number | undefined;
  /** Called after each reconnect, with the error when it failed (the watch goes on either way). */
  onReconnect?: ((error?: unknown) => void) | undefined;
}

/**
 * Watches `client`'s server checks (heartbeats) and, when one has not ended
 * `stuckAfterMs` after it started, closes the client and connects it again:
 * every `Db`, collection and store built on it keeps working. Checks once a
 * second on an unreferenced timer (it never keeps the process alive).
 * @returns a function that stops watching.
 * @throws TypeError when `stuckAfterMs` is not a positive number.
 */
export function reconnectWhenMonitorHangs(client: MongoClient, options: MonitorWatchOptions = {}): () => void {
  const stuckAfterMs = options.stuckAfterMs ?? 2 * client.options.connectTimeoutMS + 1000;
  if (typeof stuckAfterMs !== 'number' || !(stuckAfterMs > 0) || !Number.isFinite(stuckAfterMs)) {
    throw new TypeError('reconnectWhenMonitorHangs: stuckAfterMs must be a positive number of milliseconds');
  }
  /** When the check in progress started (performance.now()); undefined: none. */
  let startedAt: number | undefined;
  const started = () => {
    startedAt ??= performance.now();
  };
  const ended = () => {
    startedAt = undefined;
  };
  client.on('serverHeartbeatStarted', started);
  client.on('serverHeartbeatSucceeded', ended);
  client.on('serverHeartbeatFailed', ended);
  client.on('topologyClosed', ended);
  let reconnecting = false;
  const timer = setInterval(() => {
    if (reconnecting || startedAt === undefined || performance.now() - startedAt < stuckAfterMs) return;
    reconnecting = true;
    startedAt = undefined;
    client
      .close()
      .then(() => client.connect())
      .then(
        () => options.onReconnect?.(),
        (error: unknown) => options.onReconnect?.(error),
      )
      .catch(() => {}) // a throwing onReconnect must not leave an unhandled rejection
      .finally(() => {
        reconnecting = false;
      });
  }, Math.min(1000, stuckAfterMs));
  timer.unref();
  return () => {
    clearInterval(timer);
    client.off('serverHeartbeatStarted', started);
    client.off('serverHeartbeatSucceeded', ended);
    client.off('serverHeartbeatFailed', ended);
    client.off('topologyClosed', ended);
  };
}
