import net from 'node:net';
export const proxy = { target: 0, server: null as net.Server | null, port: 0, sockets: new Set<net.Socket>() };
export async function startProxy(target: number): Promise<number> {
  proxy.target = target;
  proxy.server = net.createServer((c) => {
    const up = net.connect(proxy.target, '127.0.0.1');
    proxy.sockets.add(c);
    proxy.sockets.add(up);
    c.pipe(up);
    up.pipe(c);
    const end = () => {
      c.destroy();
      up.destroy();
      proxy.sockets.delete(c);
      proxy.sockets.delete(up);
    };
    c.on('error', end);
    up.on('error', end);
    c.on('close', end);
    up.on('close', end);
  });
  await new Promise<void>((r) => proxy.server!.listen(0, '127.0.0.1', () => r()));
  proxy.port = (proxy.server!.address() as net.AddressInfo).port;
  return proxy.port;
}
export function switchProxy(target: number) {
  proxy.target = target;
  for (const s of proxy.sockets) s.destroy();
}
