#!/usr/bin/env bash
# Run `make test`'s legs side by side, each into its own log, and report each leg's result and
# wall time; exits non-zero when any leg failed (and prints that leg's log).
#
# usage: deploy/local/test-legs.sh NAME 'COMMAND' [NAME 'COMMAND' ...]
#
# Most of a leg's time is waiting (on Kafka, OPA, subprocesses and the tests' own polling), not
# CPU, so on the 2-core machine the legs together take little longer than the longest alone.
set -uo pipefail

LOGS=${SAMSYN_TEST_LOGS:-var/test-logs}
mkdir -p "$LOGS"
names=() pids=() started=$SECONDS
while (($# >= 2)); do
  name=$1 command=$2
  shift 2
  (
    begun=$SECONDS
    bash -o pipefail -c "$command" >"$LOGS/leg-$name.log" 2>&1
    rc=$?
    echo "$rc $((SECONDS - begun))" >"$LOGS/leg-$name.rc"
    exit "$rc"
  ) &
  names+=("$name") pids+=($!)
done

failed=0
for i in "${!names[@]}"; do
  name=${names[$i]}
  wait "${pids[$i]}"
  read -r rc wall <"$LOGS/leg-$name.rc"
  summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)|^(FAILED|ERROR) ' "$LOGS/leg-$name.log" | tail -20)
  printf '[%s] %s in %d min %02d s: %s\n' "$name" "$([[ $rc == 0 ]] && echo passed || echo FAILED)" \
    $((wall / 60)) $((wall % 60)) "${summary:-see $LOGS/leg-$name.log}"
  if [[ $rc != 0 ]]; then
    failed=1
    echo "----- $LOGS/leg-$name.log (last 200 lines)"
    tail -200 "$LOGS/leg-$name.log"
    echo "-----"
  fi
done
wall=$((SECONDS - started))
printf '[legs] all done in %d min %02d s\n' $((wall / 60)) $((wall % 60))
exit "$failed"
