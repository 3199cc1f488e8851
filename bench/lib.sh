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
    echo "max_queued_messages 0"
    echo "persistence false"
    echo "user root"
    echo "log_dest none"
    printf '%s\n' "$@"
  } > "$dir/mosquitto.conf"
  mosquitto -c "$dir/mosquitto.conf" & BROKER=$!
  sleep 0.3
}
