// Checks the browser's SPAKE2 module against the four test vectors of
// RFC 9382, Appendix B (P256-SHA256-HKDF-HMAC-SHA256), then runs random
// exchanges with matching and mismatching codes. Exits non-zero on the
// first failure. Run by `cargo test -p hearth-server --test spake2_js`.

import assert from "node:assert/strict";
import { start, passwordScalar, decodePoint, TEST_ONLY } from "../../crates/hearth-server/src/web/spake2.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));
const scalar = (text) => BigInt(`0x${text}`);

// Values as published in RFC 9382, Appendix B.
const VECTORS = [
  {
    a: "server",
    b: "client",
    w: "2ee57912099d31560b3a44b1184b9b4866e904c49d12ac5042c97dca461b1a5f",
    x: "43dd0fd7215bdcb482879fca3220c6a968e66d70b1356cac18bb26c84a78d729",
    y: "dcb60106f276b02606d8ef0a328c02e4b629f84f89786af5befb0bc75b6e66be",
    pA: "04a56fa807caaa53a4d28dbb9853b9815c61a411118a6fe516a8798434751470f9010153ac33d0d5f2047ffdb1a3e42c9b4e6be662766e1eeb4116988ede5f912c",
    pB: "0406557e482bd03097ad0cbaa5df82115460d951e3451962f1eaf4367a420676d09857ccbc522686c83d1852abfa8ed6e4a1155cf8f1543ceca528afb591a1e0b7",
    ke: "0e0672dc86f8e45565d338b0540abe69",
    cA: "58ad4aa88e0b60d5061eb6b5dd93e80d9c4f00d127c65b3b35b1b5281fee38f0",
    cB: "d3e2e547f1ae04f2dbdbf0fc4b79f8ecff2dff314b5d32fe9fcef2fb26dc459b",
  },
  {
    a: "",
    b: "client",
    w: "0548d8729f730589e579b0475a582c1608138ddf7054b73b5381c7e883e2efae",
    x: "403abbe3b1b4b9ba17e3032849759d723939a27a27b9d921c500edde18ed654b",
    y: "903023b6598908936ea7c929bd761af6039577a9c3f9581064187c3049d87065",
    pA: "04a897b769e681c62ac1c2357319a3d363f610839c4477720d24cbe32f5fd85f44fb92ba966578c1b712be6962498834078262caa5b441ecfa9d4a9485720e918a",
    pB: "04e0f816fd1c35e22065d5556215c097e799390d16661c386e0ecc84593974a61b881a8c82327687d0501862970c64565560cb5671f696048050ca66ca5f8cc7fc",
    ke: "642f05c473c2cd79909f9a841e2f30a7",
    cA: "47d29e6666af1b7dd450d571233085d7a9866e4d49d2645e2df975489521232b",
    cB: "3313c5cefc361d27fb16847a91c2a73b766ffa90a4839122a9b70a2f6bd1d6df",
  },
  {
    a: "server",
    b: "",
    w: "626e0cdc7b14c9db3e52a0b1b3a768c98e37852d5db30febe0497b14eae8c254",
    x: "07adb3db6bc623d3399726bfdbfd3d15a58ea776ab8a308b00392621291f9633",
    y: "b6a4fc8dbb629d4ba51d6f91ed1532cf87adec98f25dd153a75accafafedec16",
    pA: "04f88fb71c99bfffaea370966b7eb99cd4be0ff1a7d335caac4211c4afd855e2e15a873b298503ad8ba1d9cbb9a392d2ba309b48bfd7879aefd0f2cea6009763b0",
    pB: "040c269d6be017dccb15182ac6bfcd9e2a14de019dd587eaf4bdfd353f031101e7cca177f8eb362a6e83e7d5e729c0732e1b528879c086f39ba0f31a9661bd34db",
    ke: "005184ff460da2ce59062c87733c299c",
    cA: "bc9f9bbe99f26d0b2260e6456e05a86196a3307ec6663a18bf6ac825736533b2",
    cB: "c2370e1bf813b086dff0d834e74425a06e6390f48f5411900276dcccc5a297ec",
  },
  {
    a: "",
    b: "",
    w: "7bf46c454b4c1b25799527d896508afd5fc62ef4ec59db1efb49113063d70cca",
    x: "8cef65df64bb2d0f83540c53632de911b5b24b3eab6cc74a97609fd659e95473",
    y: "d7a66f64074a84652d8d623a92e20c9675c61cb5b4f6a0063e4648a2fdc02d53",
    pA: "04a65b367a3f613cf9f0654b1b28a1e3a8a40387956c8ba6063e8658563890f46ca1ef6a676598889fc28de2950ab8120b79a5ef1ea4c9f44bc98f585634b46d66",
    pB: "04589f13218822710d98d8b2123a079041052d9941b9cf88c6617ddb2fcc0494662eea8ba6b64692dc318250030c6af045cb738bc81ba35b043c3dcb46adf6f58d",
    ke: "fc6374762ba5cf11f4b2caa08b2cd1b9",
    cA: "dfb4db8d48ae5a675963ea5e6c19d98d4ea028d8e898dad96ea19a80ade95dca",
    cB: "d0f0609d1613138d354f7e95f19fb556bf52d751947241e8c7118df5ef0ae175",
  },
];

for (const [index, vector] of VECTORS.entries()) {
  const label = `RFC 9382 vector ${index + 1}`;
  const w = scalar(vector.w);
  const sideA = start("A", w, vector.a, vector.b, new Uint8Array(), scalar(vector.x));
  const sideB = start("B", w, vector.a, vector.b, new Uint8Array(), scalar(vector.y));
  assert.equal(hex(sideA.share), vector.pA, `${label}: pA`);
  assert.equal(hex(sideB.share), vector.pB, `${label}: pB`);

  const resultA = await sideA.finish(unhex(vector.pB));
  const resultB = await sideB.finish(unhex(vector.pA));
  assert.equal(hex(resultA.sharedKey), vector.ke, `${label}: Ke of A`);
  assert.equal(hex(resultB.sharedKey), vector.ke, `${label}: Ke of B`);
  assert.equal(hex(resultA.confirmation), vector.cA, `${label}: A's confirmation`);
  assert.equal(hex(resultB.confirmation), vector.cB, `${label}: B's confirmation`);
  assert.ok(resultA.verifyPeer(unhex(vector.cB)), `${label}: A accepts B's confirmation`);
  assert.ok(resultB.verifyPeer(unhex(vector.cA)), `${label}: B accepts A's confirmation`);
}

// Random exchanges: the same code gives the same key, another code a
// confirmation failure on both sides.
const offer = "offer-0123";
const right = await passwordScalar("k7qf-9m2d", offer);
assert.equal(right, await passwordScalar("K7QF 9M2D", offer), "code normalisation");
assert.notEqual(right, await passwordScalar("K7QF9M2D", "other-offer"), "offer id is bound into w");
const wrong = await passwordScalar("K7QF9M2E", offer);
// The same value is pinned in hearth-access's pake tests, so the
// JavaScript and Rust derivations cannot drift apart.
assert.equal(
  (await passwordScalar("K7QF-9M2D", "offer-1")).toString(16).padStart(64, "0"),
  "d8df060506a453969ec280803c6f20a342717fd99fa40144e438f48a115517ce",
  "w matches the Rust derivation",
);

const device = start("A", right, "device", "server", "aad");
const server = start("B", right, "device", "server", "aad");
const deviceResult = await device.finish(server.share);
const serverResult = await server.finish(device.share);
assert.equal(hex(deviceResult.sharedKey), hex(serverResult.sharedKey), "matching codes agree on the key");
assert.ok(serverResult.verifyPeer(deviceResult.confirmation), "server accepts the device");
assert.ok(deviceResult.verifyPeer(serverResult.confirmation), "device accepts the server");

const guesser = start("A", wrong, "device", "server", "aad");
const honest = start("B", right, "device", "server", "aad");
const guesserResult = await guesser.finish(honest.share);
const honestResult = await honest.finish(guesser.share);
assert.ok(!honestResult.verifyPeer(guesserResult.confirmation), "a wrong code is rejected by the server");
assert.ok(!guesserResult.verifyPeer(honestResult.confirmation), "a wrong code is rejected by the device");

const otherAad = start("B", right, "device", "server", "other aad");
const otherAadResult = await otherAad.finish(device.share);
assert.ok(!otherAadResult.verifyPeer((await start("A", right, "device", "server", "aad").finish(otherAad.share)).confirmation),
  "confirmation binds the additional data");

// Malformed shares.
assert.throws(() => decodePoint(new Uint8Array(65).fill(0xff).map((v, i) => (i === 0 ? 4 : v))), /not a point/);
assert.throws(() => decodePoint(new Uint8Array(33)), /65-byte/);
const { bigintToBytes } = TEST_ONLY;
const offCurve = new Uint8Array(65);
offCurve[0] = 4;
offCurve.set(bigintToBytes(1n), 1);
offCurve.set(bigintToBytes(1n), 33);
assert.throws(() => decodePoint(offCurve), /not a point/);

console.log(`spake2.js: ${VECTORS.length} RFC 9382 vectors and the exchange checks passed`);
