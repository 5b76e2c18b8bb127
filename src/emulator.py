# Runs moto's S3/DynamoDB/SQS server until our parent goes away.
# Prints "READY <port>" once listening. The parent holds our stdin: when it exits for any
# reason (Ctrl-C, crash, end of a test run) stdin reaches EOF and the emulator stops with it.
import sys

from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address=sys.argv[1], port=int(sys.argv[2]), verbose=False)
server.start()
print("READY", server.get_host_and_port()[1], flush=True)
try:
    sys.stdin.read()
finally:
    server.stop()
