# shellcheck shell=bash
# The shell library of every script in cluster/: source it right after `set -euo pipefail`.
#
#   step "Starting etcd"         prints  " • Starting etcd"
#   ok ["etcd answers"]          prints  " ✓ etcd answers (3 s)"   (seconds since the last step)
#   fail "why [and the fix]"     prints  " ✗ why" and exits 1
#   run COMMAND...               runs COMMAND quietly, its output in $RUN_LOG; on failure shows
#                                the exact command and the last lines of its output
#   wait_for_component NAME PIDFILE LOGFILE SECONDS CHECK...
#   wait_for_rollout NAMESPACE KIND/NAME SECONDS   (these two need a `kubectl` command or function)
#   wait_for_apiservice NAME SECONDS
#   docker_build TAG CONTEXT     docker build, with or without BuildKit
#   sha256_matches FILE SUMFILE
#   download_verified URL FILE
#
# Any other command that fails stops the script with " ✗ <step> failed", the command and where.

set -E  # the ERR trap below also fires inside functions

_lib_subshell=$BASH_SUBSHELL
_step=
_step_t0=$SECONDS
_last_run=
_run_offset=0
RUN_LOG=${RUN_LOG:-${TMPDIR:-/tmp}/cloud-native-course-run.log}

step() {
  _step=$*
  _step_t0=$SECONDS
  printf ' • %s\n' "$*"
}

ok() {
  local what=${*:-$_step}
  if [ -n "$_step" ]; then
    printf ' ✓ %s (%d s)\n' "$what" $((SECONDS - _step_t0))
  else
    printf ' ✓ %s\n' "$what"
  fi
  _step=
}

fail() {
  printf ' ✗ %s\n' "$*" >&2
  exit 1
}

_on_err() { # RC COMMAND LINE, from the ERR trap
  # A failing command substitution or subshell is reported once, by the shell that ran it.
  [ "$BASH_SUBSHELL" = "$_lib_subshell" ] || return 0
  local rc=$1 command=$2 where="${BASH_SOURCE[1]:-$0}:$3" i
  printf ' ✗ %s failed (exit %d)\n' "${_step:-$(basename "$0")}" "$rc" >&2
  for ((i = 1; i < ${#FUNCNAME[@]}; i++)); do [ "${FUNCNAME[i]}" = run ] && break; done
  if ((i < ${#FUNCNAME[@]})); then # it failed under `run`: name what run was given, and where
    printf '   command: %s\n   at: %s:%s\n' "$_last_run" "${BASH_SOURCE[i + 1]:-$0}" "${BASH_LINENO[i]:-?}" >&2
    printf '   its output (all of it in %s):\n' "$RUN_LOG" >&2
    tail -c +"$((_run_offset + 1))" "$RUN_LOG" | tail -n 20 | sed 's/^/   │ /' >&2
  else
    printf '   command: %s\n   at: %s\n' "$command" "$where" >&2
  fi
}
trap '_on_err $? "$BASH_COMMAND" "$LINENO"' ERR

run() { # COMMAND...: quiet on success; on failure the ERR trap shows the command and its output
  mkdir -p "$(dirname "$RUN_LOG")"
  _last_run=$(printf '%q ' "$@")
  printf '\n$ %s\n' "$_last_run" >>"$RUN_LOG"
  _run_offset=$(wc -c <"$RUN_LOG")
  # A subshell, so that a failure inside a function is reported here, not into the log.
  ("$@") >>"$RUN_LOG" 2>&1
}

_show_log_tail() { # LOGFILE
  if [ -s "$1" ]; then
    printf '   last lines of %s:\n' "$1" >&2
    tail -n 20 "$1" | sed 's/^/   │ /' >&2
  else
    printf '   (%s is empty or missing)\n' "$1" >&2
  fi
}

# Polls CHECK every half second. Stops at once, with the tail of LOGFILE, when the process in
# PIDFILE has died, or after SECONDS: no silent long wait for something that already crashed.
wait_for_component() { # NAME PIDFILE LOGFILE SECONDS CHECK...
  local name=$1 pidfile=$2 logfile=$3 limit=$4 t0=$SECONDS pid
  shift 4
  until "$@" >/dev/null 2>&1; do
    pid=$(cat "$pidfile" 2>/dev/null) || pid=
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
      printf ' ✗ %s is not running (pid %s exited)\n' "$name" "${pid:-unknown}" >&2
      _show_log_tail "$logfile"
      exit 1
    fi
    if ((SECONDS - t0 >= limit)); then
      printf ' ✗ %s is running but did not answer within %d s\n   check: %s\n' \
        "$name" "$limit" "$(printf '%q ' "$@")" >&2
      _show_log_tail "$logfile"
      exit 1
    fi
    sleep 0.5
  done
}

wait_for_apiservice() { # NAME SECONDS: until the aggregated API answers through the API server
  local name=$1 limit=$2 t0=$SECONDS
  until [ "$(kubectl get apiservice "$name" -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ]; do
    if ((SECONDS - t0 >= limit)); then
      printf ' ✗ APIService %s not Available within %d s:\n' "$name" "$limit" >&2
      kubectl get apiservice "$name" -o 'jsonpath={.status.conditions[0].message}{"\n"}' 2>&1 | sed 's/^/   /' >&2 || true
      exit 1
    fi
    sleep 1
  done
}

_rollout_done() { # GEN/OBSERVED REPLICAS/UPDATED/AVAILABLE
  local replicas=${2%%/*}
  [ "${1%%/*}" = "${1#*/}" ] && { [ "$replicas" = 0 ] || [ "$2" = "$replicas/$replicas/$replicas" ]; }
}

# Waits until a Deployment (deploy/NAME) has all its replicas available, or a DaemonSet (ds/NAME)
# a pod available on every node it wants. Stops early, with the pod's reason and
# the end of its log, when a pod cannot start (no image, crash loop, bad config).
wait_for_rollout() { # NAMESPACE KIND/NAME SECONDS
  local ns=$1 workload=$2 limit=$3 t0=$SECONDS counts reasons selector wanted
  # generation/observed, wanted/updated/available: the rollout is done when each pair is equal
  case $workload in
    deploy/*) wanted='{.spec.replicas}/{.status.updatedReplicas}/{.status.availableReplicas}' ;;
    ds/*) wanted='{.status.desiredNumberScheduled}/{.status.updatedNumberScheduled}/{.status.numberAvailable}' ;;
    *) fail "wait_for_rollout: $workload is neither deploy/NAME nor ds/NAME" ;;
  esac
  while :; do
    counts=$(kubectl -n "$ns" get "$workload" -o "jsonpath={.metadata.generation}/{.status.observedGeneration} $wanted" 2>/dev/null) || counts=
    if [ -n "$counts" ] && _rollout_done "${counts% *}" "${counts#* }"; then return 0; fi
    selector=$(kubectl -n "$ns" get "$workload" -o 'jsonpath={.spec.selector.matchLabels}' 2>/dev/null |
      tr -d '{}"' | tr ':' '=') || selector=
    reasons=$(kubectl -n "$ns" get pods -l "$selector" -o \
      'jsonpath={range .items[*].status.containerStatuses[*]}{.state.waiting.reason}{" "}{end}' 2>/dev/null) || reasons=
    case " $reasons " in
      *" ErrImagePull "* | *" ImagePullBackOff "* | *" ErrImageNeverPull "* | *" CrashLoopBackOff "* | \
        *" CreateContainerConfigError "* | *" CreateContainerError "* | *" InvalidImageName "*)
        printf ' ✗ %s in %s cannot start: %s\n' "$workload" "$ns" "$reasons" >&2
        kubectl -n "$ns" logs "$workload" --tail=20 2>&1 | sed 's/^/   │ /' >&2 || true
        kubectl -n "$ns" get pods -l "$selector" -o wide 2>&1 | sed 's/^/   /' >&2 || true
        exit 1
        ;;
    esac
    if ((SECONDS - t0 >= limit)); then
      printf ' ✗ %s in %s not available within %d s\n' "$workload" "$ns" "$limit" >&2
      kubectl -n "$ns" get pods -l "$selector" -o wide 2>&1 | sed 's/^/   /' >&2 || true
      kubectl -n "$ns" get events --sort-by=.lastTimestamp 2>&1 | tail -n 10 | sed 's/^/   /' >&2 || true
      exit 1
    fi
    sleep 1
  done
}

docker_build() { # TAG CONTEXT
  if docker buildx version >/dev/null 2>&1; then
    docker build -q -t "$1" "$2"
  else # Debian's docker.io has no buildx: the classic builder
    DOCKER_BUILDKIT=0 docker build -q -t "$1" "$2"
  fi
}

# True when FILE's SHA-256 is the first word of SUMFILE: dl.k8s.io's BINARY.sha256 holds the bare
# hash, `sha256sum` output adds the file name; both work.
sha256_matches() { # FILE SUMFILE
  local want got
  read -r want _ <"$2" || [ -n "${want:-}" ] || return 1
  want=$(printf '%s' "$want" | tr 'A-F' 'a-f')
  [ "${#want}" = 64 ] || return 1
  got=$({ sha256sum "$1" 2>/dev/null || shasum -a 256 "$1"; } | cut -d' ' -f1) || return 1
  [ "$got" = "$want" ]
}

# Fetches URL and the SHA-256 published beside it (URL.sha256, as dl.k8s.io publishes them);
# FILE appears, executable, only when they match. Unreachable: returns 1. Mismatch: stops the script.
download_verified() { # URL FILE
  local url=$1 file=$2
  curl -fsSL --retry 2 -o "$file.download" "$url" || return 1
  curl -fsSL --retry 2 -o "$file.sha256" "$url.sha256" || return 1
  if ! sha256_matches "$file.download" "$file.sha256"; then
    rm -f "$file.download" "$file.sha256"
    fail "$url does not match its published checksum ($url.sha256); it was not installed"
  fi
  chmod +x "$file.download"
  mv "$file.download" "$file"
  rm -f "$file.sha256"
}
