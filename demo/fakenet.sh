#!/usr/bin/env bash
# The demo's fake internet: a network namespace on this machine with one "exfiltration
# server" that records what reaches it.  The demo agent's upload attempts target its
# address, so nothing the demo does ever leaves this machine, enforced or simulated.
#
#   fakenet.sh up NAME DIR     prints the server's IP; the server logs to DIR/received.log
#   fakenet.sh down NAME
# Needs root (ip netns); `up` exits 2 without it and the demo skips the upload step.
set -euo pipefail
cmd="$1"; name="$2"
host_if="lgd${name: -8}h"; ns_if="lgd${name: -8}n"
case "$cmd" in
up)
	dir="$3"
	[ "$(id -u)" = 0 ] || exit 2
	ip netns add "$name"
	ip link add "$host_if" type veth peer name "$ns_if"
	ip link set "$ns_if" netns "$name"
	ip addr add 10.203.77.1/30 dev "$host_if"
	ip link set "$host_if" up
	ip -n "$name" addr add 10.203.77.2/30 dev "$ns_if"
	ip -n "$name" link set "$ns_if" up
	ip -n "$name" link set lo up
	ip -n "$name" route add default via 10.203.77.1
	# The sink: accept HTTP on port 80, record the request (body included), answer 200.
	ip netns exec "$name" /usr/bin/python3 - "$dir/received.log" >/dev/null 2>&1 <<'PY' &
import socket, sys
log = sys.argv[1]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(16)
while True:
    c, peer = s.accept()
    c.settimeout(3)
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < 4096:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if n and len(body) >= n[0]:
                    break
    except OSError:
        pass
    with open(log, "ab") as fh:
        fh.write(data + b"\n")
    try:
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    except OSError:
        pass
    c.close()
PY
	echo $! >"$dir/sink.pid"
	for _ in $(seq 50); do
		ip netns exec "$name" ss -ltn 2>/dev/null | grep -q ':80 ' && break
		sleep 0.1
	done
	echo 10.203.77.2
	;;
down)
	dir="${3:-}"
	if [ -n "$dir" ] && [ -f "$dir/sink.pid" ]; then kill "$(cat "$dir/sink.pid")" 2>/dev/null || true; fi
	ip netns pids "$name" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip link del "$host_if" 2>/dev/null || true
	ip netns del "$name" 2>/dev/null || true
	;;
esac
