"""A TCP proxy that limits each connection, as S3 does: every byte passes unchanged (so
presigned URLs that name this proxy's host:port keep their signatures), but each connection
carries at most RATE bytes per second in each direction, however many there are.

python3 bench/throttle.py LISTEN_PORT TARGET_PORT RATE_MB_PER_S

Prints "READY" once it listens; stops on SIGTERM or SIGINT.
"""

import asyncio
import signal
import sys

CHUNK = 256 * 1024
# Credit an idle connection may bank, so pacing does not turn a pause into a burst.
BURST_SECONDS = 0.05


async def pump(reader, writer, rate):
    loop = asyncio.get_running_loop()
    due = loop.time()
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            now = loop.time()
            due = max(due, now - BURST_SECONDS) + len(data) / rate
            if due > now:
                await asyncio.sleep(due - now)
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def handle(client_reader, client_writer, target_port, rate):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pump(client_reader, server_writer, rate),
        pump(server_reader, client_writer, rate),
    )
    for w in (server_writer, client_writer):
        w.close()


async def main():
    listen_port, target_port, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) * 1e6
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target_port, rate), "127.0.0.1", listen_port
    )
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.cancel)
    print("READY", flush=True)
    async with server:
        try:
            await stop
        except asyncio.CancelledError:
            pass


asyncio.run(main())
