import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

/**
 * A double of the EC2 instance metadata service (IMDSv2), for the node harness: run inside
 * the harness's router namespace (`ip netns exec <router> node imds-double.js <map> <addr>`),
 * it answers on <addr>:80 (169.254.169.254, an address of that namespace only) for the
 * instances the harness laid out, telling them apart by the request's source address (each
 * test host's primary address, from the terraform apply).
 *
 * <map>: a JSON file `{ "<primary ip>": { "instance-id": "i-...", "tags/instance/EtcdMember": "etcd-0" } }`,
 * read at every request (the harness rewrites it per environment).
 * Served: `PUT /latest/api/token` (with `X-aws-ec2-metadata-token-ttl-seconds`), then
 * `GET /latest/meta-data/<key>` with the `X-aws-ec2-metadata-token` header; 401 without a
 * token, 404 for a key it does not know.
 * https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
 */

const [mapFile, address] = process.argv.slice(2);
if (!mapFile || !address) {
  process.stderr.write('usage: imds-double.js <map.json> <address>\n');
  process.exit(2);
}
const TOKEN = 'kp-nodes-imds-double-token';

createServer((req, res) => {
  const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const reply = (status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
    process.stdout.write(`${ip} ${req.method} ${req.url} ${status}\n`);
  };
  if (req.method === 'PUT' && req.url === '/latest/api/token') {
    if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return reply(400, 'missing TTL header');
    return reply(200, TOKEN);
  }
  if (req.headers['x-aws-ec2-metadata-token'] !== TOKEN) return reply(401, 'IMDSv2 token required');
  const prefix = '/latest/meta-data/';
  const map = JSON.parse(readFileSync(mapFile, 'utf8')) as Record<string, Record<string, string>>;
  const value = req.url?.startsWith(prefix) ? map[ip]?.[req.url.slice(prefix.length)] : undefined;
  return value === undefined ? reply(404, 'Not Found') : reply(200, value);
}).listen(80, address, () => process.stdout.write(`imds double on ${address}:80\n`));
