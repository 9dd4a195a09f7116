#!/usr/bin/env python3
"""A loopback TCP proxy that adds a fixed one-way delay in each direction.

  delayproxy.py --delay-ms 25 --listen-port 0 --upstream 127.0.0.1:PORT [...]
      --max-seconds 900

Prints `{"ports": {"UPSTREAM_PORT": LISTEN_PORT, ...}}` once listening. Every
chunk read from one side is written to the other `delay` later, in order
(a queue per direction, so a delay is latency, not a bandwidth cap); EOF is
forwarded the same way. The upstream connection is opened `delay` after
the client's is accepted (its SYN's trip). The client's own connect()
completes locally, so the TCP handshake's round trip is NOT seen through
the proxy: add one round trip for a real network (BENCHMARKS.md does).
Only 127.0.0.0/8 upstreams are accepted. Stops by itself after --max-seconds.
"""
import argparse
import asyncio
import ipaddress
import json
import socket
import sys


async def pump(reader, writer_fut, delay, loop):
    """Copy reader -> (await writer_fut), each chunk `delay` after it was read."""
    queue = asyncio.Queue()

    async def deliver():
        writer = await writer_fut
        if writer is None:
            return
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
    except OSError:
        queue.put_nowait((loop.time() + delay, None))
    await task


async def handle(client_r, client_w, upstream, delay):
    loop = asyncio.get_running_loop()
    client_w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def connect():
        # The SYN's trip: the server sees the connection `delay` after the
        # client made it. Client bytes read meanwhile keep their due time.
        await asyncio.sleep(delay)
        try:
            r, w = await asyncio.open_connection(*upstream)
        except OSError:
            return None, None
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return r, w

    up = asyncio.create_task(connect())

    async def up_writer():
        return (await up)[1]

    async def client_writer():
        return client_w

    async def downstream():
        up_r, _ = await up
        if up_r is not None:
            await pump(up_r, asyncio.ensure_future(client_writer()), delay, loop)

    try:
        await asyncio.gather(pump(client_r, asyncio.ensure_future(up_writer()), delay, loop), downstream())
    finally:
        _, up_w = await up
        for w in (client_w, up_w):
            try:
                if w is not None:
                    w.close()
            except OSError:
                pass


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--delay-ms", type=float, default=25)
    p.add_argument("--upstream", action="append", required=True, help="127.0.0.1:PORT (repeatable)")
    p.add_argument("--max-seconds", type=float, default=900)
    a = p.parse_args()
    delay = a.delay_ms / 1000
    ports = {}
    servers = []
    for up in a.upstream:
        host, port = up.rsplit(":", 1)
        if not ipaddress.ip_address(host).is_loopback:
            sys.exit(f"refusing non-loopback upstream {host}")
        srv = await asyncio.start_server(
            lambda r, w, u=(host, int(port)): handle(r, w, u, delay), "127.0.0.1", 0)
        servers.append(srv)
        ports[port] = srv.sockets[0].getsockname()[1]
    print(json.dumps({"ports": ports, "delay_ms": a.delay_ms}), flush=True)
    await asyncio.sleep(a.max_seconds)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
