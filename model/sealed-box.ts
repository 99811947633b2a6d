/**
 * Sealing a warm-pool assignment to the one runner that asked for it: the runner makes an
 * X25519 key pair when it starts waiting and sends only the public key; the claim seals the job
 * file (token, secrets, definition) to it with an ephemeral key (ECDH, HKDF-SHA256,
 * AES-256-GCM). The database row that carries the assignment between the claiming worker and the
 * log service therefore never holds a token or a secret in the clear, and nothing but that
 * runner's memory can open it.
 *
 * Bundled into the runner (Node 18): node:crypto only.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';

const INFO = Buffer.from('solstice pool assignment v1');

export interface SealKeyPair {
  /** SPKI DER, base64: what the runner sends. */
  publicKey: string;
  privateKey: KeyObject;
}

export function newSealKeyPair(): SealKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), privateKey };
}

function keyFor(shared: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, salt, INFO, 32));
}

function publicKeyFrom(b64: string): KeyObject {
  const key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'x25519') throw new Error('the runner sent a key that is not X25519');
  return key;
}

/** A JSON string only the holder of `recipientPublicKey`'s private key can open. */
export function seal(recipientPublicKey: string, plaintext: string): string {
  const recipient = publicKeyFrom(recipientPublicKey);
  const eph = generateKeyPairSync('x25519');
  const epk = eph.publicKey.export({ format: 'der', type: 'spki' });
  const key = keyFor(diffieHellman({ privateKey: eph.privateKey, publicKey: recipient }), epk);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return JSON.stringify({
    v: 1,
    epk: epk.toString('base64'),
    iv: iv.toString('base64'),
    ct: ct.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  });
}

/** Opens what `seal` made for this key pair; throws when it was sealed to another or altered. */
export function open(privateKey: KeyObject, sealed: string): string {
  const box = JSON.parse(sealed) as { v: number; epk: string; iv: string; ct: string; tag: string };
  if (box.v !== 1) throw new Error(`sealed assignment version ${String(box.v)} is not known`);
  const epkDer = Buffer.from(box.epk, 'base64');
  const key = keyFor(diffieHellman({ privateKey, publicKey: publicKeyFrom(box.epk) }), epkDer);
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'));
  decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(box.ct, 'base64')), decipher.final()]).toString('utf8');
}
