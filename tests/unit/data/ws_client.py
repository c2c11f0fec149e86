"""An independent WebSocket client (python3-websocket) against the node
server's /exec WebSocket framing: offers v5, echoes stdin, sends the CLOSE
signal for stdin and reads the error channel and the close frame.
Usage: ws_client.py PORT. Prints what it saw; exits non-zero on a mismatch."""
import ssl
import sys

import websocket

port = int(sys.argv[1])
ws = websocket.create_connection(
    f"wss://127.0.0.1:{port}/exec/default/pod/c?command=cat&input=1&output=1",
    subprotocols=["v5.channel.k8s.io", "v4.channel.k8s.io"],
    sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False},
)
print("protocol", ws.getsubprotocol())
payload = bytes([0]) + b"from python \x00\xff"
ws.send(payload, opcode=websocket.ABNF.OPCODE_BINARY)
opcode, data = ws.recv_data()
if opcode != websocket.ABNF.OPCODE_BINARY or data != bytes([1]) + payload[1:]:
    print("echo mismatch:", opcode, data)
    sys.exit(1)
print("echo ok")
ws.send(bytes([255, 0]), opcode=websocket.ABNF.OPCODE_BINARY)  # CLOSE stdin
opcode, data = ws.recv_data()
if data[:1] != bytes([3]):
    print("expected the error channel:", data)
    sys.exit(1)
print("error channel:", data[1:].decode())
opcode, frame = ws.recv_data_frame(True)
if opcode != websocket.ABNF.OPCODE_CLOSE:
    print("expected a close frame, got opcode", opcode)
    sys.exit(1)
code = int.from_bytes(frame.data[:2], "big")
print("close", code)
sys.exit(0 if code == 1000 else 1)
