/** How to reach one etcd member's client URL (shared by the etcdctl and the gateway paths). */
export interface EtcdEndpoint {
  /** e.g. `https://127.0.0.1:2379` */
  url: string;
  /** CA bundle, client certificate and key file paths (all three, or none for plain http) */
  tls?: { caFile: string; certFile: string; keyFile: string };
}
