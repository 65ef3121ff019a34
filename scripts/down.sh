#!/usr/bin/env bash
# make down: stop the cloud started by make up (its state stays in the state dir).
source "$(dirname "$0")/lib.sh"
if [[ -f $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  pid=$(cat "$PID_FILE")
  step "Stopping ferrostack (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PID_FILE"
else
  step "Ferrostack is not running"
fi
