import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/**
 * A TCP forwarder from a Unix socket to `<host>:<port>`, for the node harness: run inside
 * the router namespace (`ip netns exec <router> node unix-bridge.js <socket> <host> <port>`),
 * it lets the test process — in this machine's own network namespace, which the harness
 * leaves untouched — reach the local AWS (127.0.0.1:5000 there) or an etcd member (its ENI
 * address) through a socket file, which every network namespace sees. The test side is
 * {@link import('./masters.js').tcpToUnix}: a loopback port piped to the socket. Bytes pass
 * as they are (TLS stays end to end).
 */

const [socket, host, port] = process.argv.slice(2);
if (!socket || !host || !port) {
  process.stderr.write('usage: unix-bridge.js <socket> <host> <port>\n');
  process.exit(2);
}
rmSync(socket, { force: true });
createServer((c) => {
  const up = connect(Number(port), host);
  c.pipe(up).pipe(c);
  const close = () => {
    c.destroy();
    up.destroy();
  };
  c.on('error', close);
  up.on('error', close);
}).listen(socket, () => process.stdout.write(`bridge ${socket} -> ${host}:${port}\n`));
