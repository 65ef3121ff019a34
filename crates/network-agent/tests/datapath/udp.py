# UDP for the test guests (busybox nc has no UDP mode here).
#   udp.py listen PORT SECONDS        prints the first datagram received, if any
#   udp.py send SPORT HOST DPORT TEXT sends TEXT from SPORT
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[1] == "listen":
    s.bind(("0.0.0.0", int(sys.argv[2])))
    s.settimeout(float(sys.argv[3]))
    try:
        print(s.recv(1500).decode(), flush=True)
    except socket.timeout:
        pass
else:
    s.bind(("0.0.0.0", int(sys.argv[2])))
    s.sendto(sys.argv[5].encode(), (sys.argv[3], int(sys.argv[4])))
