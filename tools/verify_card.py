import base64, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

b64 = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
header, claims, signature = sys.argv[2].split(".")
kid = json.loads(b64(header))["kid"]
jwk = next(k for k in json.load(open(sys.argv[1]))["keys"] if k["kid"] == kid and k["crv"] == "Ed25519")
Ed25519PublicKey.from_public_bytes(b64(jwk["x"])).verify(b64(signature), f"{header}.{claims}".encode())
print(json.dumps(json.loads(b64(claims))))  # reached only when the signature is genuine (else InvalidSignature)
