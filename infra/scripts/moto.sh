# shellcheck shell=bash
# Start and stop a private moto server on a free loopback port.
# Sourced by tests/run.sh and scripts/deploy.sh.
#
#   moto_start LOGFILE   -> sets MOTO_PID and MOTO_URL, exports fake credentials
#   moto_stop

moto_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

moto_start() {
  local log=$1 port cmd
  port=$(moto_free_port)
  if command -v moto_server >/dev/null 2>&1; then
    cmd=(moto_server)
  else
    cmd=(python3 -m moto.server)
  fi
  "${cmd[@]}" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  MOTO_URL="http://127.0.0.1:$port"

  # Fake credentials only, and no profile or credentials file that could
  # point a stray call at a real account.
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_SESSION_TOKEN=test
  export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-west-1}
  export AWS_REGION=$AWS_DEFAULT_REGION
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  unset AWS_PROFILE AWS_DEFAULT_PROFILE
  export AWS_ENDPOINT_URL="$MOTO_URL"

  local _
  for _ in $(seq 1 60); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('$MOTO_URL/moto-api/', timeout=1)" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto_server exited; log:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "moto_server did not answer on $MOTO_URL within 30 s" >&2
  return 1
}

moto_stop() {
  if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null
    wait "$MOTO_PID" 2>/dev/null
  fi
  MOTO_PID=
}

# A stand-in deployment zip (moto's CreateFunction accepts any zip) for runs
# before `make lambda` has built the real one.
placeholder_zip() {
  local dir=$1
  python3 - "$dir" <<'PY'
import os, stat, sys, zipfile
d = sys.argv[1]
info = zipfile.ZipInfo("bootstrap")
info.external_attr = (stat.S_IFREG | 0o755) << 16
with zipfile.ZipFile(os.path.join(d, "bootstrap.zip"), "w") as z:
    z.writestr(info, "#!/bin/sh\necho 'placeholder: build the real zip with make lambda' >&2\nexit 1\n")
PY
  echo "$dir/bootstrap.zip"
}
