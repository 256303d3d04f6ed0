#!/usr/bin/env python3
"""Loopback TCP proxies that add a fixed one-way delay, for the pullpilot benchmarks.

The kernel here has no netem, so latency is emulated in user space: every chunk read from
either side of a connection is forwarded DELAY later (its order kept; no bandwidth limit unless --bandwidth-kbps),
in both directions. A request/response exchange therefore costs 2 x DELAY more than on the
bare loopback: with --delay-ms 50 the round-trip time (RTT) is 100 ms.

One process runs one or more proxies:

    delay_proxy.py --delay-ms 50 --ports-file FILE --source 127.0.77.1 \
        --proxy registry=127.0.0.1:15003 --proxy issuer=127.0.0.1:15004 \
        --rewrite registry 'realm="http://127.0.0.1:15004/' 'realm="http://127.0.0.1:{issuer}/'

* Each `--proxy NAME=UPSTREAM` listens on 127.0.0.1 (an ephemeral port unless
  `--listen NAME=PORT` fixes it) and forwards to UPSTREAM. When all listen, FILE gets one
  `NAME PORT` line per proxy (written atomically), so a script can wait for it.
* `--rewrite NAME OLD NEW` replaces OLD with NEW in what upstream NAME sends back; `{other}`
  in NEW is replaced by proxy `other`'s port. The bench uses it to point the token realm of
  the registry's `WWW-Authenticate` challenge at the delayed issuer proxy, so that every
  client (pullpilot, skopeo, dockerd) fetches its tokens through a delayed path too. The
  replacement is done per chunk: the challenge header is written in one piece by the
  registry, and the count of rewrites is logged on exit.
* `--source ADDR` binds the upstream side of every connection to ADDR (any 127/8 address),
  so the registry's access log tells this proxy's requests from everybody else's.
* `--handshake` also charges each new connection one RTT (as a TCP handshake over a real link
  would): the first chunk a client sends is forwarded after 3 x DELAY instead of DELAY.
  Off by default.
* `--bandwidth-kbps K` limits what upstreams send back (the download direction) to K KiB/s per
  proxy, shared by all of that proxy's connections as one link would be: each chunk leaves
  when the link has carried the ones before it, then arrives DELAY later. Requests (the
  upload direction) are not limited. Off (0) by default.
* `--max-seconds S` (default 1800): the proxy exits by itself after S seconds, whatever
  happens, so a crashed caller never leaves it behind. SIGTERM/SIGINT stop it at once.

Python 3.7+, standard library only.
"""

import argparse
import asyncio
import os
import signal
import sys
import time


class Stats:
    def __init__(self):
        self.connections = {}
        self.rewrites = {}
        self.downloaded = {}

    def line(self):
        parts = [f"{n}: {c} connections" for n, c in sorted(self.connections.items())]
        parts += [f"{n}: {c} rewrites" for n, c in sorted(self.rewrites.items())]
        parts += [f"{n}: {c / 1048576:.1f} MiB downloaded"
                  for n, c in sorted(self.downloaded.items())]
        return "; ".join(parts)


STATS = Stats()


class Link:
    """One direction of a bandwidth-limited link, shared by every connection of a proxy."""

    def __init__(self, bytes_per_second):
        self.rate = bytes_per_second
        self.free_at = 0.0

    def sent_by(self, now, size):
        """When a chunk of `size` bytes read at `now` has gone through the link."""
        start = max(now, self.free_at)
        self.free_at = start + size / self.rate
        return self.free_at


LINKS = {}


def split_hostport(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"not host:port: {text!r}")
    return host, int(port)


async def pump(reader, writer, delay, rewrite, first_extra, name, link=None):
    """Copies reader -> writer, each chunk `delay` seconds after it was read (after it has
    gone through `link`, when given)."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    sender = asyncio.ensure_future(send())
    first = True
    try:
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if data and rewrite:
                for old, new in rewrite:
                    n = data.count(old)
                    if n:
                        data = data.replace(old, new)
                        STATS.rewrites[name] = STATS.rewrites.get(name, 0) + n
            extra = first_extra if first else 0.0
            first = False
            now = loop.time()
            if link is not None and data:
                STATS.downloaded[name] = STATS.downloaded.get(name, 0) + len(data)
                now = link.sent_by(now, len(data))
            queue.put_nowait((now + delay + extra, data or None))
            if not data:
                break
        await sender
    finally:
        sender.cancel()


TASKS = set()


async def handle(client_reader, client_writer, name, upstream, args, rewrites):
    task = asyncio.current_task()
    TASKS.add(task)
    try:
        await relay(client_reader, client_writer, name, upstream, args, rewrites)
    except asyncio.CancelledError:
        pass
    finally:
        TASKS.discard(task)


async def relay(client_reader, client_writer, name, upstream, args, rewrites):
    STATS.connections[name] = STATS.connections.get(name, 0) + 1
    delay = args.delay_ms / 1000.0
    try:
        local = (args.source, 0) if args.source else None
        up_reader, up_writer = await asyncio.open_connection(
            upstream[0], upstream[1], local_addr=local)
    except OSError as e:
        print(f"delay_proxy: {name}: cannot reach {upstream[0]}:{upstream[1]}: {e}",
              file=sys.stderr)
        client_writer.close()
        return
    first_extra = 2 * delay if args.handshake else 0.0
    try:
        await asyncio.gather(
            pump(client_reader, up_writer, delay, None, first_extra, name),
            pump(up_reader, client_writer, delay, rewrites.get(name), 0.0, name,
                 LINKS.get(name)),
        )
    finally:
        for w in (up_writer, client_writer):
            try:
                w.close()
            except OSError:
                pass


async def main(args):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.call_later(args.max_seconds, lambda: stop.done() or stop.set_result(None))

    if args.bandwidth_kbps > 0:
        for name, _ in args.proxy:
            LINKS[name] = Link(args.bandwidth_kbps * 1024.0)
    fixed = dict(args.listen or [])
    servers, ports, rewrites = [], {}, {}
    for name, upstream in args.proxy:
        def factory(r, w, name=name, upstream=upstream):
            return handle(r, w, name, upstream, args, rewrites)
        server = await asyncio.start_server(factory, "127.0.0.1", fixed.get(name, 0),
                                            reuse_address=True)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]

    for name, old, new in args.rewrite or []:
        new = new.format(**ports)
        rewrites.setdefault(name, []).append((old.encode(), new.encode()))

    if args.ports_file:
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for name, port in ports.items():
                f.write(f"{name} {port}\n")
        os.replace(tmp, args.ports_file)
    print("delay_proxy: " + ", ".join(f"{n} 127.0.0.1:{p} -> {u[0]}:{u[1]}"
                                      for (n, u), p in zip(args.proxy, ports.values()))
          + f", {args.delay_ms} ms each way"
          + (f", {args.bandwidth_kbps} KiB/s down" if args.bandwidth_kbps > 0 else ""),
          file=sys.stderr, flush=True)
    started = time.monotonic()
    await stop
    for server in servers:
        server.close()
    for task in list(TASKS):
        task.cancel()
    await asyncio.sleep(0)
    print(f"delay_proxy: stopped after {time.monotonic() - started:.0f} s; {STATS.line()}",
          file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])

    def named(text, conv=str):
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
        return name, conv(value)

    p.add_argument("--delay-ms", type=float, default=50.0, help="one-way delay (default 50)")
    p.add_argument("--proxy", action="append", required=True,
                   type=lambda t: named(t, split_hostport), help="NAME=UPSTREAM_HOST:PORT")
    p.add_argument("--listen", action="append", type=lambda t: named(t, int),
                   help="NAME=PORT (default: an ephemeral port)")
    p.add_argument("--rewrite", action="append", nargs=3, metavar=("NAME", "OLD", "NEW"),
                   help="replace OLD by NEW in what upstream NAME sends")
    p.add_argument("--source", help="source address of upstream connections (127/8)")
    p.add_argument("--ports-file", help="write 'NAME PORT' lines here once listening")
    p.add_argument("--handshake", action="store_true",
                   help="charge each new connection one extra RTT")
    p.add_argument("--bandwidth-kbps", type=float, default=0.0,
                   help="limit each proxy's download direction to this many KiB/s (0: none)")
    p.add_argument("--max-seconds", type=float, default=1800.0,
                   help="exit after this many seconds (default 1800)")
    return p.parse_args(argv)


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args(sys.argv[1:])))
    except KeyboardInterrupt:
        pass
