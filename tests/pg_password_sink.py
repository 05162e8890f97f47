"""pg_password_sink.py PORTFILE OUTFILE: a stand-in PostgreSQL server for one
connection that asks for a cleartext password, writes the password the
client sent to OUTFILE, then refuses it (28P01). Lets a test see which
password libpq sent (from PGPASSWORD) without a server. Exits after one
client, or after 20 s."""
import socket
import struct
import sys

port_file, out_file = sys.argv[1:3]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.settimeout(20)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)
conn, _ = srv.accept()
conn.settimeout(20)


def recv_exact(n):
    b = b""
    while len(b) < n:
        chunk = conn.recv(n - len(b))
        if not chunk:
            raise SystemExit("client went away")
        b += chunk
    return b


while True:  # SSLRequest / GSSENCRequest: "no", then the startup message
    length, code = struct.unpack("!ii", recv_exact(8))
    rest = recv_exact(length - 8)
    if code in (80877103, 80877104):
        conn.sendall(b"N")
        continue
    break
conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
kind = recv_exact(1)
length = struct.unpack("!i", recv_exact(4))[0]
body = recv_exact(length - 4)
with open(out_file, "wb") as f:
    f.write(body.rstrip(b"\0") if kind == b"p" else b"?" + kind)
fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed (stand-in server)\0\0"
conn.sendall(b"E" + struct.pack("!i", 4 + len(fields)) + fields)
conn.close()
