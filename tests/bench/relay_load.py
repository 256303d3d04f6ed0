#!/usr/bin/env python3
"""B7: one `pullpilot relay` holding N authenticated `listen` sockets (issue #14).

    python3 tests/bench/relay_load.py --binary target/release/pullpilot --clients 5000

(normally through `bash tests/bench/relay_load.sh [N]`, which builds and raises `ulimit -n`).

Standard library only. Starts the relay on 127.0.0.1 with a temporary state directory, then
for each of N simulated listeners, as `pullpilot listen` does (src/listen/relay_client.rs,
src/webhook/protocol.rs): POST /v1/provision with an Ed25519 public key, open the WebSocket at
the listenUrl, sign the `hello` challenge (context || webhook id || challenge), expect `ready`,
then send the text `ping` every 30 s (first one at a random phase, as clients connect at
different times) and expect `pong`. Client i binds its sockets to its own 127.x.y.z source
address, so the relay's per-network caps (provisions, pending connections) do not interfere.

Then: an idle minute (heartbeats only) over which the relay's CPU is measured from
/proc/PID/stat (utime + stime, as a percentage of one core); then 100 pokes/s for 30 s, each a
fresh HTTP connection (GET /v1/poke/<id>, from 16 poker addresses) to a random webhook not
poked in the last 6 s (so the relay's 5 s coalescing never defers one: a deferred delivery
would measure the window, not the relay). The latency of a poke is from just before its
connection opens to the moment its frame is read by the client; frames are matched by the
webhook id (one poke in flight per webhook). Peak RSS is VmHWM from /proc/PID/status at the
end; threads are the most seen in /proc/PID/status, sampled every second.

Prints one line per metric with the goal and met/missed, and exits 1 if a goal was missed or
the run itself failed (clients that did not authenticate, pokes not answered 202 or lost).
Loopback only; nothing else on the network.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

GOAL_RSS_MIB = 512
GOAL_P99_MS = 100
GOAL_IDLE_CPU = 5.0
PING_INTERVAL = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------------------------------------
# Ed25519 signing (RFC 8032, section 5.1), pure Python: the standard library has none. Only
# signing is needed; the relay verifies with ring, so a wrong signature shows up as failed auths.

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if x & 1 != sign:
        x = P - x
    return x


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


_BY = 4 * pow(5, P - 2, P) % P
_BX = _recover_x(_BY, 0)
_BASE = (_BX, _BY, 1, _BX * _BY % P)
# B * 2^i, so a scalar multiple of B is one addition per set bit.
_TABLE = []
_pt = _BASE
for _ in range(256):
    _TABLE.append(_pt)
    _pt = _add(_pt, _pt)


def _mul_base(s):
    q = (0, 1, 1, 0)
    i = 0
    while s:
        if s & 1:
            q = _add(q, _TABLE[i])
        s >>= 1
        i += 1
    return q


def _encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


class Key:
    def __init__(self, seed):
        h = hashlib.sha512(seed).digest()
        a = int.from_bytes(h[:32], "little")
        a &= (1 << 254) - 8
        a |= 1 << 254
        self.a = a
        self.prefix = h[32:]
        self.public = _encode(_mul_base(a))

    def sign(self, msg):
        r = int.from_bytes(hashlib.sha512(self.prefix + msg).digest(), "little") % L
        big_r = _encode(_mul_base(r))
        k = int.from_bytes(hashlib.sha512(big_r + self.public + msg).digest(), "little") % L
        s = (r + k * self.a) % L
        return big_r + s.to_bytes(32, "little")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


CONTEXT = b"pullpilot-webhook-relay/v1"

# ---------------------------------------------------------------------------------------------
# Minimal HTTP/1.1 and WebSocket (RFC 6455) client pieces.


def client_addr(i):
    """Client i's own source address: 127.1.0.1 ... 127.1.255.250, then 127.2.…"""
    return f"127.{1 + i // 64000}.{(i % 64000) // 250}.{i % 250 + 1}"


def poker_addr(i):
    return f"127.200.0.{1 + i % 16}"


async def http_request(host, port, src, method, path, body=None, timeout=20.0):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(src, 0)), timeout
    )
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        data = b""
        if body is not None:
            data = body
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        writer.write(head.encode() + b"\r\n" + data)
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
    return status, raw.split(b"\r\n\r\n", 1)[-1]


def ws_frame(text):
    """One masked text frame (clients mask, RFC 6455 §5.3)."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def ws_read(reader):
    """(opcode, payload) of the next frame; the relay never fragments."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    if b1 & 0x80:
        raise ValueError("the relay masked a frame")
    return b0 & 0x0F, await reader.readexactly(n)


# ---------------------------------------------------------------------------------------------


class Stats:
    def __init__(self):
        self.authed = 0
        self.failed = []
        self.closed = []
        self.pongs = 0
        self.pings = 0
        self.poke_sent = {}  # webhook id -> monotonic time of the poke in flight
        self.latencies = []
        self.unexpected = 0
        self.accepted = 0
        self.refused = []


class Listener:
    def __init__(self, i, host, port, key, stats):
        self.i = i
        self.src = client_addr(i)
        self.host, self.port = host, port
        self.key = key
        self.stats = stats
        self.webhook_id = None
        self.listen_path = None
        self.writer = None

    async def provision(self):
        body = json.dumps({"pubkey": b64url(self.key.public), "label": "pullpilot"}).encode()
        status, answer = await http_request(
            self.host, self.port, self.src, "POST", "/v1/provision", body
        )
        if status != 201:
            raise RuntimeError(f"provision answered {status}: {answer[:200]!r}")
        reg = json.loads(answer)
        self.webhook_id = reg["webhookId"]
        url = reg["listenUrl"]
        self.listen_path = "/" + url.split("://", 1)[1].split("/", 1)[1]

    async def connect(self):
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=(self.src, 0)), 30
        )
        self.writer = writer
        key = b64url(os.urandom(16)) + "=="
        writer.write(
            (
                f"GET {self.listen_path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        if not head.startswith(b"HTTP/1.1 101"):
            status_line = head.split(b"\r\n", 1)[0]
            raise RuntimeError(f"upgrade answered {status_line!r}")
        op, payload = await asyncio.wait_for(ws_read(reader), 30)
        hello = json.loads(payload)
        if op != 1 or hello.get("type") != "hello":
            raise RuntimeError(f"first frame was not hello: {payload[:100]!r}")
        challenge = b64url_decode(hello["challenge"])
        sig = self.key.sign(CONTEXT + self.webhook_id.encode() + challenge)
        writer.write(ws_frame(json.dumps({"type": "auth", "sig": b64url(sig)})))
        op, payload = await asyncio.wait_for(ws_read(reader), 30)
        if op != 1 or json.loads(payload).get("type") != "ready":
            raise RuntimeError(f"auth answered {op} {payload[:100]!r}")
        self.stats.authed += 1
        return reader

    async def heartbeat(self):
        await asyncio.sleep(random.uniform(0, PING_INTERVAL))
        while True:
            self.writer.write(ws_frame("ping"))
            self.stats.pings += 1
            await asyncio.sleep(PING_INTERVAL)

    async def read_loop(self, reader):
        while True:
            op, payload = await ws_read(reader)
            now = time.monotonic()
            if op == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.stats.closed.append((self.i, code, payload[2:].decode(errors="replace")))
                return
            if op != 1:
                continue
            if payload == b"pong":
                self.stats.pongs += 1
                continue
            frame = json.loads(payload)
            sent = self.stats.poke_sent.pop(self.webhook_id, None)
            if frame.get("type") == "poke" and sent is not None:
                self.stats.latencies.append(now - sent)
            else:
                self.stats.unexpected += 1

    async def live(self, reader):
        beat = asyncio.ensure_future(self.heartbeat())
        try:
            await self.read_loop(reader)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            self.stats.closed.append((self.i, None, repr(e)))
        finally:
            beat.cancel()


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def pct(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def main(args):
    random.seed(args.seed)
    state = tempfile.mkdtemp(prefix="pp-relay-load-")
    port = args.port
    log_path = os.path.join(state, "relay.log")
    log = open(log_path, "wb")
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    relay = subprocess.Popen(
        [args.binary, "relay", "--listen", f"127.0.0.1:{port}", "--state-dir", state],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    host = "127.0.0.1"
    stats = Stats()
    peak_threads = 0
    sampling = True

    async def sample():
        nonlocal peak_threads
        while sampling:
            try:
                peak_threads = max(peak_threads, int(proc_status(relay.pid)["Threads"]))
            except (OSError, KeyError, ValueError):
                pass
            await asyncio.sleep(1)

    sampler = asyncio.ensure_future(sample())
    ok = True
    try:
        for _ in range(100):
            try:
                status, _ = await http_request(host, port, "127.0.0.1", "GET", "/healthz", None, 2)
                if status == 200:
                    break
            except OSError:
                pass
            if relay.poll() is not None:
                raise RuntimeError(f"the relay exited early; see {log_path}")
            await asyncio.sleep(0.1)
        print(f"relay pid {relay.pid} on {host}:{port}, state {state}", flush=True)
        key = Key(os.urandom(32))
        listeners = [Listener(i, host, port, key, stats) for i in range(args.clients)]

        t0 = time.monotonic()
        gate = asyncio.Semaphore(64)

        async def provision(li):
            async with gate:
                try:
                    await li.provision()
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    stats.failed.append((li.i, f"provision: {e!r}"))

        await asyncio.gather(*(provision(li) for li in listeners))
        t_prov = time.monotonic() - t0
        print(f"provisioned {args.clients - len(stats.failed)} in {t_prov:.1f} s", flush=True)

        gate = asyncio.Semaphore(128)
        tasks = []

        async def connect(li):
            if li.webhook_id is None:
                return
            async with gate:
                try:
                    reader = await li.connect()
                except Exception as e:  # noqa: BLE001
                    stats.failed.append((li.i, f"connect: {e!r}"))
                    return
            tasks.append(asyncio.ensure_future(li.live(reader)))

        t0 = time.monotonic()
        await asyncio.gather(*(connect(li) for li in listeners))
        t_conn = time.monotonic() - t0
        print(f"authenticated {stats.authed} in {t_conn:.1f} s", flush=True)
        for i, why in stats.failed[:5]:
            print(f"  client {i}: {why}", flush=True)

        await asyncio.sleep(args.settle)
        c0, w0 = cpu_ticks(relay.pid), time.monotonic()
        pings0, pongs0 = stats.pings, stats.pongs
        await asyncio.sleep(args.idle)
        c1, w1 = cpu_ticks(relay.pid), time.monotonic()
        idle_cpu = (c1 - c0) / CLK_TCK / (w1 - w0) * 100
        print(
            f"idle {w1 - w0:.0f} s: {stats.pings - pings0} pings, {stats.pongs - pongs0} pongs",
            flush=True,
        )

        # 100 pokes/s to webhooks not poked in the last 6 s.
        authed = [li.webhook_id for li in listeners if li.writer is not None]
        last_poked = {}
        n_pokes = int(args.rate * args.poke_secs)
        poke_tasks = []

        async def poke(n, webhook_id):
            stats.poke_sent[webhook_id] = time.monotonic()
            try:
                status, body = await http_request(
                    host, port, poker_addr(n), "GET", f"/v1/poke/{webhook_id}"
                )
            except Exception as e:  # noqa: BLE001
                status, body = 0, repr(e).encode()
            if status == 202:
                stats.accepted += 1
            else:
                stats.refused.append((status, body[:100]))

        c_p0, t_start = cpu_ticks(relay.pid), time.monotonic()
        for n in range(n_pokes):
            due = t_start + n / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            while True:
                webhook_id = random.choice(authed)
                if now - last_poked.get(webhook_id, -1e9) > 6 and webhook_id not in stats.poke_sent:
                    break
            last_poked[webhook_id] = now
            poke_tasks.append(asyncio.ensure_future(poke(n, webhook_id)))
        await asyncio.gather(*poke_tasks)
        await asyncio.sleep(3)
        poke_cpu = (cpu_ticks(relay.pid) - c_p0) / CLK_TCK / (time.monotonic() - t_start) * 100

        status = proc_status(relay.pid)
        rss_mib = int(status["VmHWM"].split()[0]) / 1024
        rss_now_mib = int(status["VmRSS"].split()[0]) / 1024
        threads_now = int(status["Threads"])
        lat = sorted(stats.latencies)
        p50, p99 = pct(lat, 0.50) * 1000, pct(lat, 0.99) * 1000
        lost = len(stats.poke_sent)

        def verdict(met):
            return "met" if met else "MISSED"

        print()
        print(f"B7 relay load: {args.clients} listen sockets, {os.cpu_count()} cores")
        print(
            f"B7 authenticated sockets: {stats.authed}/{args.clients} "
            f"(provision {t_prov:.1f} s, connect+auth {t_conn:.1f} s); "
            f"closed by the relay during the run: {len(stats.closed)}"
        )
        print(
            f"B7 peak RSS (VmHWM): {rss_mib:.1f} MiB, now {rss_now_mib:.1f} MiB "
            f"(goal <= {GOAL_RSS_MIB} MiB) {verdict(rss_mib <= GOAL_RSS_MIB)}"
        )
        print(f"B7 threads: peak {peak_threads}, at the end {threads_now}")
        print(
            f"B7 idle CPU ({w1 - w0:.0f} s, heartbeats only): {idle_cpu:.2f} % of one core "
            f"(goal <= {GOAL_IDLE_CPU} %) {verdict(idle_cpu <= GOAL_IDLE_CPU)}"
        )
        print(
            f"B7 poke-to-frame latency ({len(lat)} pokes at {args.rate:g}/s): p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, max {(lat[-1] * 1000 if lat else float('nan')):.1f} ms "
            f"(goal p99 <= {GOAL_P99_MS} ms) {verdict(p99 <= GOAL_P99_MS)}"
        )
        print(f"B7 CPU while poking: {poke_cpu:.1f} % of one core")
        print(
            f"B7 pokes: {n_pokes} sent, {stats.accepted} answered 202, {lost} frames missing, "
            f"{stats.unexpected} unexpected frames"
        )
        for i, code, why in stats.closed[:5]:
            print(f"  client {i} closed: {code} {why}")
        for status_code, body in stats.refused[:5]:
            print(f"  poke answered {status_code}: {body!r}")
        ok = (
            stats.authed == args.clients
            and not stats.closed
            and stats.accepted == n_pokes
            and lost == 0
            and rss_mib <= GOAL_RSS_MIB
            and idle_cpu <= GOAL_IDLE_CPU
            and p99 <= GOAL_P99_MS
        )
        for t in tasks:
            t.cancel()
        for li in listeners:
            if li.writer is not None:
                li.writer.close()
    finally:
        sampling = False
        sampler.cancel()
        if relay.poll() is None:
            relay.send_signal(signal.SIGTERM)
            try:
                relay.wait(30)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
        log.close()
        if args.keep:
            print(f"kept {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/release/pullpilot")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--port", type=int, default=18787)
    parser.add_argument("--rate", type=float, default=100.0, help="pokes per second")
    parser.add_argument("--poke-secs", type=float, default=30.0)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the state dir and relay log")
    sys.exit(asyncio.run(main(parser.parse_args())))
