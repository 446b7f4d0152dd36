import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  webcrypto,
} from 'node:crypto';
import { promisify } from 'node:util';
// @peculiar/x509 (through tsyringe) needs the Reflect metadata API; it must be loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import ipaddr from 'ipaddr.js';
import { IntegrityError } from '../../errors.js';

/**
 * Certificate and key primitives of the PKI: key generation (node:crypto), certificate
 * issuance and inspection (@peculiar/x509 over Node's WebCrypto). No file I/O here.
 *
 * Profiles follow kubeadm (cmd/kubeadm/app/phases/certs/certlist.go, certutil) and
 * RFC 5280: CAs carry basicConstraints CA:TRUE (critical), keyUsage keyCertSign, cRLSign,
 * digitalSignature (critical) and a subjectKeyIdentifier; leaves carry basicConstraints
 * CA:FALSE (critical), keyUsage digitalSignature (+ keyEncipherment for RSA keys, critical),
 * extKeyUsage serverAuth and/or clientAuth, authorityKeyIdentifier = the CA's SKI, and SANs.
 */

/** Node's WebCrypto, typed as the provider @peculiar/x509 expects. */
type WebCrypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
const subtleCrypto = webcrypto as unknown as WebCrypto;
type SigningKey = x509.X509CertificateCreateWithKeyParams['signingKey'];
type SigningAlgorithm = NonNullable<x509.X509CertificateCreateWithKeyParams['signingAlgorithm']>;

const generateKeyPairAsync = promisify(generateKeyPair);

/** Extended key usages the PKI issues (RFC 5280 §4.2.1.12). */
export type Usage = 'serverAuth' | 'clientAuth';

const USAGE_OID: Record<Usage, string> = {
  serverAuth: x509.ExtendedKeyUsage.serverAuth,
  clientAuth: x509.ExtendedKeyUsage.clientAuth,
};

/** What a leaf certificate must say: its subject, usages and subject alternative names. */
export interface CertProfile {
  /** subject CommonName (for clients: the Kubernetes user name) */
  cn: string;
  /** subject Organization values (for clients: the Kubernetes groups); may be empty */
  o: string[];
  usages: Usage[];
  /** DNS SANs, in the order written */
  dns: string[];
  /** IP SANs (IPv4 or IPv6 text), in the order written */
  ips: string[];
}

/** A validity window; both ends are whole seconds (X.509 times carry no fractions). */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** Back-dating of notBefore so that nodes whose clocks lag a little accept a new certificate. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

const DAY_MS = 86_400_000;

/**
 * The validity window of a certificate issued at `now`: notBefore = now − 5 minutes
 * ({@link CLOCK_SKEW_MS}), notAfter = now + `days` days, capped at `notAfterCap` (a leaf
 * never outlives its CA). Times are truncated to whole seconds.
 *
 * @param days lifetime in days (86 400 s each)
 */
export function validityFor(now: Date, days: number, notAfterCap?: Date): Validity {
  const sec = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);
  let notAfter = now.getTime() + days * DAY_MS;
  if (notAfterCap && notAfterCap.getTime() < notAfter) notAfter = notAfterCap.getTime();
  return { notBefore: sec(now.getTime() - CLOCK_SKEW_MS), notAfter: sec(notAfter) };
}

/**
 * A random positive serial number as hex: 0x01 followed by 128 random bits, 17 octets
 * (RFC 5280 §4.1.2.2: positive, at most 20 octets; the leading 0x01 keeps it positive and
 * its DER encoding minimal whatever the random bits are).
 */
export function randomSerial(): string {
  return `01${randomBytes(16).toString('hex')}`;
}

/** A new ECDSA P-256 key pair (kubeadm's `EncryptionAlgorithm: ECDSA-P256`). */
export async function newEcKey(): Promise<KeyObject> {
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  return privateKey;
}

/** A new RSA 2048 key pair, public exponent 65537 (the service-account signing key, as kubeadm's sa.key). */
export async function newRsaKey(): Promise<KeyObject> {
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  return privateKey;
}

/** PEM "PRIVATE KEY" (PKCS#8, RFC 5208) of a private key, newline-terminated. */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** PEM "PUBLIC KEY" (SubjectPublicKeyInfo, RFC 5280 §4.1.2.7) of a private or public key. */
export function publicKeyPem(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** DER SubjectPublicKeyInfo of a key (private or public). */
export function spkiDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/**
 * Parses a PEM private key.
 * @param where the file (relative path) named in the error; never the key itself
 * @throws IntegrityError when the text is not a private key
 */
export function parsePrivateKey(pem: string | Buffer, where: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new IntegrityError(`${where}: not a PEM private key`);
  }
}

/**
 * Parses a PEM certificate.
 * @throws IntegrityError naming `where` when the text is not a certificate
 */
export function parseCertificate(pem: string | Buffer, where: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem.toString());
  } catch {
    throw new IntegrityError(`${where}: not a PEM certificate`);
  }
}

/** PEM "CERTIFICATE" text of a certificate, newline-terminated. */
export function certificatePem(cert: x509.X509Certificate): string {
  const pem = cert.toString('pem').replace(/\r\n/g, '\n');
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** True when `key` (private) is the key of `cert` (same SubjectPublicKeyInfo). */
export function keyMatchesCertificate(key: KeyObject, cert: x509.X509Certificate): boolean {
  return spkiDer(key).equals(Buffer.from(cert.publicKey.rawData));
}

/** WebCrypto signing key and signature algorithm for an ECDSA (P-256/P-384) or RSA private key. */
async function signerFor(
  key: KeyObject,
  where: string,
): Promise<{ key: SigningKey; algorithm: SigningAlgorithm }> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const named = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (!named) throw new IntegrityError(`${where}: unsupported EC curve ${curve ?? '(unknown)'}`);
    const hash = named === 'P-256' ? 'SHA-256' : 'SHA-384';
    const ck = await subtleCrypto.subtle.importKey(
      'pkcs8',
      der,
      { name: 'ECDSA', namedCurve: named },
      false,
      ['sign'],
    );
    return { key: ck, algorithm: { name: 'ECDSA', hash } as SigningAlgorithm };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const ck = await subtleCrypto.subtle.importKey(
      'pkcs8',
      der,
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    return { key: ck, algorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as SigningAlgorithm };
  }
  throw new IntegrityError(`${where}: unsupported key type ${key.asymmetricKeyType ?? '(unknown)'}`);
}

function subjectName(cn: string, o: string[] = []): x509.JsonName {
  return [...(o.length ? [{ O: o }] : []), { CN: [cn] }];
}

/**
 * Creates a self-signed CA certificate for `key`.
 *
 * @param cn the CA's CommonName (kubernetes, etcd-ca, front-proxy-ca as kubeadm)
 * @param where the key file, for errors
 * @returns the certificate
 */
export async function createCaCertificate(
  cn: string,
  key: KeyObject,
  validity: Validity,
  where: string,
): Promise<x509.X509Certificate> {
  const signer = await signerFor(key, where);
  const spki = spkiDer(key);
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: subjectName(cn),
      issuer: subjectName(cn),
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      publicKey: spki,
      signingKey: signer.key,
      signingAlgorithm: signer.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(spki, false, subtleCrypto),
      ],
    },
    subtleCrypto,
  );
}

/** A CA able to sign: its certificate and private key. */
export interface Signer {
  cert: x509.X509Certificate;
  key: KeyObject;
  /** the key file, for errors */
  where: string;
}

/**
 * Issues a leaf certificate for `leafKey`, signed by `ca`, following `profile`.
 *
 * @returns the certificate
 * @throws IntegrityError when the CA key cannot sign (unsupported type)
 */
export async function issueLeaf(
  ca: Signer,
  leafKey: KeyObject,
  profile: CertProfile,
  validity: Validity,
): Promise<x509.X509Certificate> {
  const signer = await signerFor(ca.key, ca.where);
  const spki = spkiDer(leafKey);
  const caSki = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey, false, subtleCrypto);
  let keyUsage = x509.KeyUsageFlags.digitalSignature;
  // RFC 5280 §4.2.1.3 / kubeadm: RSA keys also encipher (TLS RSA key exchange); EC keys do not.
  if (leafKey.asymmetricKeyType === 'rsa') keyUsage |= x509.KeyUsageFlags.keyEncipherment;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(keyUsage, true),
    new x509.ExtendedKeyUsageExtension(
      profile.usages.map((u) => USAGE_OID[u]),
      false,
    ),
    aki,
    await x509.SubjectKeyIdentifierExtension.create(spki, false, subtleCrypto),
  ];
  const names: x509.JsonGeneralName[] = [
    ...profile.dns.map((value) => ({ type: 'dns' as const, value })),
    ...profile.ips.map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: subjectName(profile.cn, profile.o),
      issuer: ca.cert.subjectName,
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      publicKey: spki,
      signingKey: signer.key,
      signingAlgorithm: signer.algorithm,
      extensions,
    },
    subtleCrypto,
  );
}

/**
 * True when `cert` was issued by `ca`: the issuer name equals the CA's subject and the
 * signature verifies with the CA's public key (validity dates are not checked here).
 */
export async function isIssuedBy(cert: x509.X509Certificate, ca: x509.X509Certificate): Promise<boolean> {
  if (cert.issuer !== ca.subject) return false;
  try {
    return await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }, subtleCrypto);
  } catch {
    return false;
  }
}

/** What a certificate actually says, in the terms of {@link CertProfile}. */
export function describeCertificate(cert: x509.X509Certificate): CertProfile {
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const usages = (eku?.usages ?? []).flatMap((u) =>
    (Object.keys(USAGE_OID) as Usage[]).filter((k) => USAGE_OID[k] === String(u)),
  );
  const items = san?.names.items ?? [];
  return {
    cn: cert.subjectName.getField('CN')[0] ?? '',
    o: cert.subjectName.getField('O'),
    usages,
    dns: items.filter((n) => n.type === 'dns').map((n) => n.value),
    ips: items.filter((n) => n.type === 'ip').map((n) => canonicalIp(n.value)),
  };
}

/** Canonical text of an IP address (ipaddr.js), so that `::1` and `0:0:…:1` compare equal. */
export function canonicalIp(text: string): string {
  return ipaddr.isValid(text) ? ipaddr.parse(text).toString() : text;
}

/**
 * Differences between what a certificate says and what its profile asks for, as short
 * human-readable phrases (empty when they agree). Order of SANs and values is ignored.
 */
export function profileDifferences(actual: CertProfile, wanted: CertProfile): string[] {
  const out: string[] = [];
  const setDiff = (label: string, a: string[], w: string[]) => {
    const missing = w.filter((x) => !a.includes(x));
    const extra = a.filter((x) => !w.includes(x));
    if (missing.length) out.push(`${label} missing ${missing.join(', ')}`);
    if (extra.length) out.push(`${label} unexpected ${extra.join(', ')}`);
  };
  if (actual.cn !== wanted.cn) out.push(`CN is ${actual.cn}, wanted ${wanted.cn}`);
  setDiff('O', actual.o, wanted.o);
  setDiff('extKeyUsage', actual.usages, wanted.usages);
  setDiff('DNS SAN', actual.dns, wanted.dns);
  setDiff('IP SAN', actual.ips.map(canonicalIp), wanted.ips.map(canonicalIp));
  return out;
}
