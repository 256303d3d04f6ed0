#!/usr/bin/env python3
"""Bearer-token issuer for the pullpilot test bed's token-auth registry.

It implements the small part of the Docker registry token protocol that a
`docker-registry` configured with `auth: token` needs:

    GET /token?service=SERVICE&scope=repository:NAME:pull,push[&scope=...]
        with Basic credentials, or none (Docker's classic flow);
    POST /token with a form: grant_type=password, username, password, scope,
        service (the OAuth2 flow of containerd's resolver, used by Docker's
        containerd image store); grant_type=refresh_token gets 400, so the
        client falls back to GET.

* Requests with valid credentials get the actions they ask for
  (pull, push, delete and "*" on repositories; "*" on registry:catalog).
* Anonymous requests get a token whose `access` claim is empty, so the
  registry refuses them with 401.
* Requests with wrong credentials get 401 (as a real issuer does),
  which makes `docker login` with a bad password fail.

Tokens are ES256 JWTs whose header carries the self-signed signing
certificate in `x5c`; the registry trusts that certificate through its
`rootcertbundle`.  The response carries `token`, `access_token`,
`expires_in` and `issued_at`.

Every request is logged as one line in the log file, with its scopes, so
tests can count token requests.

Usage:
    token_issuer.py init-cert --dir DIR
        Creates DIR/key.pem and DIR/cert.pem (P-256) unless they exist.
    token_issuer.py serve --listen 127.0.0.1:PORT --dir DIR --issuer NAME
        --service NAME --user USER --password PASSWORD --log FILE
"""

import argparse
import base64
import datetime
import hmac
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN_LIFETIME_SECONDS = 300
REPOSITORY_ACTIONS = {"pull", "push", "delete", "*"}


def init_cert(directory):
    """Creates a P-256 key and a self-signed certificate, once."""
    key_path = os.path.join(directory, "key.pem")
    cert_path = os.path.join(directory, "cert.pem")
    if os.path.exists(key_path) and os.path.exists(cert_path):
        return
    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pptb-token-issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    os.chmod(key_path, 0o600)
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def parse_scope(scope):
    """Splits `type:name:actions`; the name may itself contain ':'."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first < 0 or last == first:
        return None
    kind, name, actions = scope[:first], scope[first + 1:last], scope[last + 1:]
    return kind, name, [a for a in actions.split(",") if a]


class Issuer:
    def __init__(self, args):
        self.args = args
        with open(os.path.join(args.dir, "key.pem"), "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        with open(os.path.join(args.dir, "cert.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", buffering=1, encoding="utf-8")

    def log(self, line):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.log_lock:
            self.log_file.write(f"{stamp} {line}\n")
            self.log_file.flush()

    def check_basic(self, header):
        """Returns (user, ok) for a Basic header; (None, True) when there is none."""
        if not header:
            return None, True
        if not header.lower().startswith("basic "):
            return None, False
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except Exception:  # noqa: BLE001 - any malformed header is a refusal
            return None, False
        return user, self.check_password(user, password)

    def check_password(self, user, password):
        return hmac.compare_digest(user, self.args.user) and hmac.compare_digest(
            password, self.args.password
        )

    def grant(self, scopes, authenticated):
        access = []
        if not authenticated:
            return access
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            if kind == "repository":
                allowed = [a for a in actions if a in REPOSITORY_ACTIONS]
            elif kind == "registry" and name == "catalog":
                allowed = [a for a in actions if a == "*"]
            else:
                allowed = []
            if allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def token(self, subject, access):
        now = int(time.time())
        claims = {
            "iss": self.args.issuer,
            "sub": subject or "",
            "aud": self.args.service,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"x5c": self.x5c})


def make_handler(issuer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "pptb-token-issuer/1"

        def note(self, line):
            """Logs one token request, with the client's product (`pullpilot/0.1.0`)."""
            agent = (self.headers.get("User-Agent") or "-").split()[0]
            issuer.log(f"{line} agent={agent}")

        def log_message(self, fmt, *args):  # the issuer writes its own log lines
            pass

        def send_json(self, status, body, extra_headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra_headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def handle_token(self, query, form=None):
            scopes = []
            for value in query.get("scope", []):
                scopes.extend(s for s in value.split(" ") if s)
            service = (query.get("service") or [""])[0]
            if form is None:
                # Docker's classic flow: GET with Basic credentials, or none.
                user, ok = issuer.check_basic(self.headers.get("Authorization"))
                flow = "get"
            else:
                # The OAuth2 flow containerd's resolver uses: POST with a form.
                grant = (form.get("grant_type") or [""])[0]
                flow = f"post-{grant or 'none'}"
                if grant == "password":
                    user = (form.get("username") or [""])[0]
                    password = (form.get("password") or [""])[0]
                    ok = issuer.check_password(user, password)
                elif grant == "refresh_token":
                    # No refresh tokens here: a 400 makes clients fall back to GET.
                    self.note(
                        f"token request method=POST flow={flow} auth=unsupported user=- "
                        f"service={service or '-'} scopes={' '.join(scopes) or '-'} status=400"
                    )
                    self.send_json(400, {"error": "unsupported_grant_type"})
                    return
                else:
                    user, ok = issuer.check_basic(self.headers.get("Authorization"))
            auth = "anonymous" if user is None and ok else ("valid" if ok else "invalid")
            if not ok:
                self.note(
                    f"token request method={self.command} flow={flow} auth=invalid "
                    f"user={user or '-'} service={service or '-'} "
                    f"scopes={' '.join(scopes) or '-'} status=401"
                )
                self.send_json(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]},
                    [("WWW-Authenticate", 'Basic realm="pptb-token-issuer"')],
                )
                return
            access = issuer.grant(scopes, authenticated=user is not None)
            token = issuer.token(user, access)
            granted = " ".join(
                f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access
            )
            self.note(
                f"token request method={self.command} flow={flow} auth={auth} "
                f"user={user or '-'} service={service or '-'} "
                f"scopes={' '.join(scopes) or '-'} granted={granted or '-'} status=200"
            )
            issued = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.send_json(200, {
                "token": token,
                "access_token": token,
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "issued_at": issued,
            })

        def route(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path == "/token":
                if self.command == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                    for key in ("scope", "service"):
                        query.setdefault(key, []).extend(form.get(key, []))
                    self.handle_token(query, form)
                else:
                    self.handle_token(query)
            elif url.path == "/healthz":
                self.send_json(200, {"ok": True})
            else:
                self.send_json(404, {"errors": [{"code": "NOT_FOUND"}]})

        def do_GET(self):  # noqa: N802 - http.server naming
            self.route()

        def do_POST(self):  # noqa: N802 - http.server naming
            self.route()

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init-cert")
    init.add_argument("--dir", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--listen", required=True)
    serve.add_argument("--dir", required=True)
    serve.add_argument("--issuer", required=True)
    serve.add_argument("--service", required=True)
    serve.add_argument("--user", required=True)
    serve.add_argument("--password", required=True)
    serve.add_argument("--log", required=True)
    args = parser.parse_args()

    if args.command == "init-cert":
        init_cert(args.dir)
        return 0

    host, _, port = args.listen.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("token_issuer: refusing to listen on a non-loopback address", file=sys.stderr)
        return 2
    issuer = Issuer(args)
    server = ThreadingHTTPServer((host, int(port)), make_handler(issuer))
    server.daemon_threads = True
    issuer.log(f"listening on {args.listen} issuer={args.issuer} service={args.service}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
