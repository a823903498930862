"""A stand-in database: answers "ok" on 127.0.0.1:47311 and keeps a helper child."""
import socket
import subprocess

helper = subprocess.Popen(["sleep", "100003"])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 47311))
s.listen()
print(f"db: listening on 127.0.0.1:47311, helper PID {helper.pid}", flush=True)
while True:
    conn, _ = s.accept()
    conn.sendall(b"ok\n")
    conn.close()
