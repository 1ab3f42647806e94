/**
 * The load generator, the same for every contender: keep-alive HTTP/1.1 GETs
 * from this process over loopback, `concurrency` requests in flight.
 */
import { Agent, request } from 'node:http';

export interface LoadResult {
  /** Milliseconds per request, in completion order. */
  latencies: number[];
  wallMs: number;
  /** `name=value` of the first Set-Cookie of each response that had one. */
  cookies: string[];
  /** Responses that were not 2xx/3xx, and requests that got no response. */
  failures: number;
}

export async function drive(options: {
  port: number;
  path: string;
  requests: number;
  concurrency: number;
  cookies?: readonly string[] | undefined;
}): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const latencies: number[] = [];
  const cookies: string[] = [];
  let failures = 0;
  let next = 0;
  const pool = options.cookies ?? [];
  const started = performance.now();
  const worker = async () => {
    while (next < options.requests) {
      const index = next++;
      const cookie = pool.length > 0 ? pool[index % pool.length] : undefined;
      const began = performance.now();
      try {
        const response = await get(agent, options.port, options.path, cookie);
        if (response.status >= 400) failures++;
        if (response.cookie) cookies.push(response.cookie);
      } catch {
        failures++; // reset or refused: the server failed this request
      }
      latencies.push(performance.now() - began);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const wallMs = performance.now() - started;
  agent.destroy();
  return { latencies, wallMs, cookies, failures };
}

/** A plain GET against the server's control endpoints. */
export async function control(port: number, path: string): Promise<string> {
  const agent = new Agent({ keepAlive: false });
  try {
    return (await get(agent, port, path, undefined)).body;
  } finally {
    agent.destroy();
  }
}

function get(
  agent: Agent,
  port: number,
  path: string,
  cookie: string | undefined,
): Promise<{ status: number; cookie: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: '127.0.0.1', port, path, headers: cookie ? { cookie } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const setCookie = res.headers['set-cookie']?.[0];
          resolve({
            status: res.statusCode ?? 0,
            cookie: setCookie?.slice(0, setCookie.indexOf(';') === -1 ? undefined : setCookie.indexOf(';')),
            body: Buffer.concat(chunks).toString(),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
