#!/usr/bin/env bash
# Start the scale-out backends the tests talk to, where installed but not running.
# Tests skip (or, with CI=true, fail) when a service is still unreachable.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() { for _ in $(seq 1 60); do up "$1" && return 0; sleep 0.5; done; return 1; }
start() {
  local name=$1 port=$2; shift 2
  if up "$port"; then return 0; fi
  if ! command -v "$1" >/dev/null 2>&1; then echo "services: $name not installed; its tests will skip"; return 0; fi
  echo "services: starting $name"
  "$@" >/dev/null 2>&1 || true
  wait_up "$port" || echo "services: $name did not come up on port $port"
}
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  start postgresql 5432 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
start redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /tmp --logfile /tmp/tsgate-redis.log
start rabbitmq 5672 rabbitmq-server -detached
bash "$(dirname "$0")/pgbouncer.sh"
exit 0
