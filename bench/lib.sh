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
    # The broker must never drop a message to a slow subscriber. The
    # recording issue says `max_queued_messages 0` (no limit), but in
    # Debian's mosquitto 2.0.11 that value has bugs: it ignores
    # max_inflight_messages for QoS 1 subscribers, and now and then it stops
    # sending a subscriber the messages it has queued, so the run times out
    # short (0 has been buggy across 2.0.x: eclipse-mosquitto/mosquitto
    # #1956, #2879, #3088, #3244; the maintainers' workaround is a very high
    # number). A limit of 10^7, far above any run here, drops nothing the
    # same way. MAXQ=0 restores the literal setting.
    echo "max_queued_messages ${MAXQ:-10000000}"
    echo "persistence false"
    echo "user root"
    echo "log_dest none"
    printf '%s\n' "$@"
  } > "$dir/mosquitto.conf"
  mosquitto -c "$dir/mosquitto.conf" & BROKER=$!
  # Ready once it accepts a connection (at most 5 s).
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.1; done
  echo "mosquitto did not listen on $PORT within 5 s" >&2
  return 1
}
