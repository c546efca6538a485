// Verify a waiting-room admission token offline, as any Node backend would.
//
//   node verify.mjs <waiting-room-url> <event> <token>
//
// Prints one JSON line: {"valid":true,"ticket",...} or {"valid":false,"code"}; exits 1 when invalid.
// Verification is offline: the JWKS is fetched once and cached (and refetched for an unknown kid).
// Single use is NOT checked here: redeem the token once with POST <waiting-room-url>/api/redeem.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [waitingRoomUrl, event, token] = process.argv.slice(2);
if (!waitingRoomUrl || !event || !token) {
  console.error("usage: node verify.mjs <waiting-room-url> <event> <token>");
  process.exit(2);
}

const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", waitingRoomUrl));

try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer: waitingRoomUrl.replace(/\/+$/, ""),
    audience: event,
    algorithms: ["EdDSA", "ES256", "ES384", "RS256"],
  });
  console.log(JSON.stringify({
    valid: true, ticket: payload.sub, event: payload.aud, jti: payload.jti, expires_at: payload.exp, kid: protectedHeader.kid,
  }));
} catch (err) {
  console.log(JSON.stringify({ valid: false, code: err.code ?? "ERR_UNKNOWN", message: err.message }));
  process.exitCode = 1;
}
