/**
 * A loopback proxy in front of the run's MongoDB server that can close
 * connections the way a server that shuts down does: the monitor's idle
 * connection first, then the connection of the operation in flight. That
 * order hangs the driver's polling monitor (test/server.test.ts pins it).
 */
import { type AddressInfo, connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';

export interface MonitorProxy {
  /** `mongodb://127.0.0.1:<port>/` */
  uri: string;
  /** The next operation sent closes the monitor's connection, then its own. */
  closeOnNextOperation(): void;
  close(): Promise<void>;
}

export async function monitorProxy(serverUri: string): Promise<MonitorProxy> {
  const [host, port] = new URL(serverUri).host.split(':');
  const accepted: Socket[] = [];
  let armed = false;
  const proxy: Server = createServer((socket) => {
    accepted.push(socket); // the first one is the monitor's
    const upstream = tcpConnect(Number(port ?? 27017), host ?? '127.0.0.1');
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.pipe(socket);
    socket.on('data', (chunk) => {
      if (armed && socket !== accepted[0]) {
        armed = false;
        accepted[0]?.end(); // FIN on the idle monitor connection...
        socket.end(); // ...then on the operation's
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    uri: `mongodb://127.0.0.1:${(proxy.address() as AddressInfo).port}/`,
    closeOnNextOperation: () => {
      armed = true;
    },
    close: async () => {
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
