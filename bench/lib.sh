# Shared by the bench scripts (source it): free loopback ports and a local
# mosquitto configured so that it never drops a message to a slow subscriber.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_mosquitto DIR [extra config lines...]: sets PORT and BROKER (the pid);
# the caller kills BROKER when done.
start_mosquitto() {
  local dir=$1; shift
  PORT=$(free_port)
  {
    echo "listener $PORT 127.0.0.1"
    echo "allow_anonymous true"
    # 0 = no limit, as the recording issue specifies. Two caveats of
    # Debian's mosquitto 2.0.11 (its inflight quota accounting, reworked
    # upstream in 2.0.13): with 0 it also ignores max_inflight_messages for
    # QoS 1 subscribers, and now and then it stops sending one the messages
    # it has queued (the run then times out short). MAXQ=10000000 gives a
    # limit that is never reached and the real 20-message in-flight window.
    echo "max_queued_messages ${MAXQ:-0}"
    echo "persistence false"
    echo "user root"
    echo "log_dest none"
    printf '%s\n' "$@"
  } > "$dir/mosquitto.conf"
  mosquitto -c "$dir/mosquitto.conf" & BROKER=$!
  sleep 0.3
}
