// SPAKE2 (RFC 9382), ciphersuite P256-SHA256-HKDF-HMAC, for pairing a
// browser with a short one-time code. The code never leaves the device:
// both sides blind their key shares with it, so a recorded exchange gives an
// attacker nothing to test guesses against offline, and each online attempt
// tests a single guess.
//
// The curve arithmetic uses BigInt. BigInt operations are not constant time,
// so a process on the same machine that can time this page could learn bits
// of the ephemeral scalar. The scalar lives for one pairing attempt and the
// code expires after ten minutes, which keeps that exposure small.
//
// The Rust side (`hearth_access::pake`) implements the same suite. Both are
// checked against the test vectors in RFC 9382, Appendix B.

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const G = affine(
  0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
);
// The RFC's M and N for P-256, as uncompressed points.
const M = affine(
  0x886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12fn,
  0x5ff355163e43ce224e0b0e65ff02ac8e5c7be09419c785e0ca547d55a12e2d20n,
);
const NPOINT = affine(
  0xd8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49n,
  0x07d60aa6bfade45008a636337f5168c64d9bd36034808cd564490b1e656edbe7n,
);

const FIELD_BYTES = 32;
const ENCODER = new TextEncoder();

function mod(value, modulus = P) {
  const rest = value % modulus;
  return rest >= 0n ? rest : rest + modulus;
}

function power(base, exponent, modulus) {
  let result = 1n;
  let square = mod(base, modulus);
  let rest = exponent;
  while (rest > 0n) {
    if (rest & 1n) result = (result * square) % modulus;
    square = (square * square) % modulus;
    rest >>= 1n;
  }
  return result;
}

function invert(value) {
  return power(value, P - 2n, P);
}

// Points are Jacobian triples {x, y, z}; z = 0 is the point at infinity.
function affine(x, y) {
  return { x, y, z: 1n };
}

const INFINITY = { x: 1n, y: 1n, z: 0n };

function isInfinity(point) {
  return point.z === 0n;
}

function double(point) {
  if (isInfinity(point) || point.y === 0n) return INFINITY;
  const delta = mod(point.z * point.z);
  const gamma = mod(point.y * point.y);
  const beta = mod(point.x * gamma);
  const alpha = mod(3n * (point.x - delta) * (point.x + delta));
  const x = mod(alpha * alpha - 8n * beta);
  const z = mod((point.y + point.z) ** 2n - gamma - delta);
  const y = mod(alpha * (4n * beta - x) - 8n * gamma * gamma);
  return { x, y, z };
}

function add(left, right) {
  if (isInfinity(left)) return right;
  if (isInfinity(right)) return left;
  const z1z1 = mod(left.z * left.z);
  const z2z2 = mod(right.z * right.z);
  const u1 = mod(left.x * z2z2);
  const u2 = mod(right.x * z1z1);
  const s1 = mod(left.y * right.z * z2z2);
  const s2 = mod(right.y * left.z * z1z1);
  const h = mod(u2 - u1);
  const r = mod(2n * (s2 - s1));
  if (h === 0n) return r === 0n ? double(left) : INFINITY;
  const i = mod(4n * h * h);
  const j = mod(h * i);
  const v = mod(u1 * i);
  const x = mod(r * r - j - 2n * v);
  const y = mod(r * (v - x) - 2n * s1 * j);
  const z = mod(((left.z + right.z) ** 2n - z1z1 - z2z2) * h);
  return { x, y, z };
}

function negate(point) {
  return { x: point.x, y: mod(-point.y), z: point.z };
}

// Montgomery ladder: the same sequence of point operations for every
// scalar of the same bit length.
function multiply(point, scalar) {
  let low = INFINITY;
  let high = point;
  for (let bit = 255; bit >= 0; bit -= 1) {
    if ((scalar >> BigInt(bit)) & 1n) {
      low = add(low, high);
      high = double(high);
    } else {
      high = add(low, high);
      low = double(low);
    }
  }
  return low;
}

function toAffine(point) {
  const zInverse = invert(point.z);
  const zInverse2 = mod(zInverse * zInverse);
  return { x: mod(point.x * zInverse2), y: mod(point.y * zInverse2 * zInverse) };
}

function isOnCurve(x, y) {
  return mod(y * y - (x * x * x - 3n * x + B)) === 0n;
}

function bigintToBytes(value, length = FIELD_BYTES) {
  const bytes = new Uint8Array(length);
  let rest = value;
  for (let index = length - 1; index >= 0; index -= 1) {
    bytes[index] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return bytes;
}

function bytesToBigint(bytes) {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

/** Encodes a point as 65 bytes: 0x04, x, y (SEC 1, uncompressed). */
export function encodePoint(point) {
  if (isInfinity(point)) throw new Error("SPAKE2: cannot encode the point at infinity");
  const { x, y } = toAffine(point);
  const bytes = new Uint8Array(1 + 2 * FIELD_BYTES);
  bytes[0] = 4;
  bytes.set(bigintToBytes(x), 1);
  bytes.set(bigintToBytes(y), 1 + FIELD_BYTES);
  return bytes;
}

/** Decodes an uncompressed point, rejecting anything not on P-256. */
export function decodePoint(bytes) {
  if (bytes.length !== 1 + 2 * FIELD_BYTES || bytes[0] !== 4) {
    throw new Error(`SPAKE2: expected a 65-byte uncompressed point, got ${bytes.length} bytes`);
  }
  const x = bytesToBigint(bytes.subarray(1, 1 + FIELD_BYTES));
  const y = bytesToBigint(bytes.subarray(1 + FIELD_BYTES));
  if (x >= P || y >= P || !isOnCurve(x, y)) throw new Error("SPAKE2: the peer's share is not a point on P-256");
  return affine(x, y);
}

function concat(parts) {
  const length = parts.reduce((total, part) => total + part.length, 0);
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// RFC 9382 prefixes each transcript field with its length as an 8-byte
// little-endian number.
function lengthPrefixed(bytes) {
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(bytes.length), true);
  return concat([prefix, bytes]);
}

function asBytes(value) {
  return typeof value === "string" ? ENCODER.encode(value) : value;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmacSha256(key, message) {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, message));
}

async function hkdfSha256(ikm, salt, info, length) {
  const imported = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, imported, length * 8);
  return new Uint8Array(bits);
}

function equalBytes(left, right) {
  if (left.length !== right.length) return false;
  let difference = 0;
  for (let index = 0; index < left.length; index += 1) difference |= left[index] ^ right[index];
  return difference === 0;
}

function randomScalar() {
  // 48 random bytes reduced mod n: the bias is below 2^-128.
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  const scalar = mod(bytesToBigint(bytes), N);
  return scalar === 0n ? 1n : scalar;
}

/**
 * Derives the password scalar w from a pairing code: HKDF-SHA256 with the
 * protocol label as salt and the offer id as info, 48 bytes reduced mod n.
 * The code is upper-cased and stripped of spaces and dashes first, and O,
 * I and L are read as 0, 1 and 1.
 */
export async function passwordScalar(code, offerId) {
  // The same normalisation as the server's: O reads as 0, I and L as 1,
  // because the code alphabet leaves those letters out.
  const normalized = code.toUpperCase().replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
  const bytes = await hkdfSha256(ENCODER.encode(normalized), ENCODER.encode("hearth/pair/v1"), asBytes(offerId), 48);
  return mod(bytesToBigint(bytes), N);
}

/**
 * Starts one side of SPAKE2. `role` is "A" (the device) or "B" (the
 * server); `w` is the password scalar; identities and `aad` are strings or
 * bytes both sides agree on. `scalar` is for test vectors only.
 * Returns the share to send and a `finish(peerShare)` function.
 */
export function start(role, w, identityA, identityB, aad = new Uint8Array(), scalar = randomScalar()) {
  if (role !== "A" && role !== "B") throw new Error(`SPAKE2: role must be "A" or "B", not ${role}`);
  const [own, other] = role === "A" ? [M, NPOINT] : [NPOINT, M];
  const share = encodePoint(add(multiply(G, scalar), multiply(own, w)));

  async function finish(peerShare) {
    const peer = decodePoint(peerShare);
    const key = multiply(add(peer, negate(multiply(other, w))), scalar);
    if (isInfinity(key)) throw new Error("SPAKE2: the shared point is the identity; the peer's share is malformed");

    const [shareA, shareB] = role === "A" ? [share, peerShare] : [peerShare, share];
    const transcript = concat([
      lengthPrefixed(asBytes(identityA)),
      lengthPrefixed(asBytes(identityB)),
      lengthPrefixed(shareA),
      lengthPrefixed(shareB),
      lengthPrefixed(encodePoint(key)),
      lengthPrefixed(bigintToBytes(w)),
    ]);
    const digest = await sha256(transcript);
    const sharedKey = digest.slice(0, 16);
    const confirmationKeys = await hkdfSha256(
      digest.slice(16),
      new Uint8Array(),
      concat([ENCODER.encode("ConfirmationKeys"), asBytes(aad)]),
      32,
    );
    const keyA = confirmationKeys.slice(0, 16);
    const keyB = confirmationKeys.slice(16);
    const confirmationA = await hmacSha256(keyA, transcript);
    const confirmationB = await hmacSha256(keyB, transcript);
    const [mine, theirs] = role === "A" ? [confirmationA, confirmationB] : [confirmationB, confirmationA];

    return {
      transcript,
      sharedKey,
      confirmation: mine,
      /** Returns whether the peer's confirmation MAC is the expected one. */
      verifyPeer: (mac) => equalBytes(asBytes(mac), theirs),
    };
  }

  return { share, finish };
}

export const TEST_ONLY = { bytesToBigint, bigintToBytes, N };
