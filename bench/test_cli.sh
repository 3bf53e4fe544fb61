#!/bin/sh
# test_cli.sh - the bench's command line: usage errors, --help/--version,
# output paths checked before the run, the JSON's environment record, and
# that a chart file name is never run as a command (gnuplot is started
# without a shell and receives the name as an argument).
# Usage: bench/test_cli.sh path/to/hmb_bench     (prints "OK: bench CLI")
set -eu
bench=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmb-bench-cli-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "bench CLI: $*" >&2; exit 1; }

# expect STATUS TEXT ARGS...: exit status STATUS and TEXT in the output.
expect() {
  want=$1
  text=$2
  shift 2
  set +e
  out=$("$bench" "$@" 2>&1)
  rc=$?
  set -e
  [ "$rc" = "$want" ] || { echo "$out"; fail "'$*': exit $rc, expected $want"; }
  case $out in *"$text"*) ;; *) echo "$out"; fail "'$*': no '$text'" ;; esac
  echo "ok: hmb_bench $* -> $rc: $(echo "$out" | head -n 1)"
}

expect 0 "usage: hmb_bench" --help
expect 0 "usage: hmb_bench" -h
expect 0 "library" --version
expect 2 "unknown option '--bogus'" --bogus
expect 2 "unknown option '--bogus'" --quick --bogus=3
expect 2 "option '--version' takes no value" --version=1
expect 2 "option '--quick' takes no value" --quick=1
expect 2 "option '--quiet' takes no value" --quiet=yes
expect 2 "--gpu: 'bogus' is not one of auto, on, off" --gpu bogus
expect 2 "option '--gpu' needs a value" --gpu
expect 2 "option '--csv' needs a value" --csv
expect 2 "--splits: 'x' is not a number" --splits x
expect 2 "--keep: '2' is not a number in [0, 1]" --keep=2
expect 2 "--policies: 'nope'" --policies nope
expect 2 "unexpected argument 'foo'" foo
expect 2 "is ambiguous" --s 1
expect 2 "--micro-touch: 'x' is not one of page, fill, both" micro --micro-touch x
expect 2 "--repeat: '0' is not a number" --repeat 0
expect 2 "--micro-groups: 'nope'" micro --micro-groups nope
expect 2 "bad --micro-sizes" micro --micro-sizes 4x --micro-groups alloc
expect 2 "bad --micro-threads" micro --micro-threads 0 --micro-groups alloc
# Unwritable outputs are usage errors found before anything runs.
expect 2 "cannot write --csv '$tmp/no/such/dir/x.csv': its directory does not exist" \
  --quick --csv "$tmp/no/such/dir/x.csv"
expect 2 "cannot write --json '$tmp': it is a directory" --quick --json "$tmp"
expect 2 "cannot write --sweep-csv" --quick --sweep --sweep-csv "$tmp/no/x.csv"
case $out in *"scan scenario"*) fail "the run started before the output check" ;; esac

# A small sweep whose chart name would run commands through a shell, or
# through gnuplot's own command substitution, if it were ever parsed.
small="--quick --quiet --no-progress --splits 8 --policies unlimited,early"
names="q';touch INJECTED;'.png
b\`touch INJECTED\`\$(touch INJECTED).png"
echo "$names" | while IFS= read -r png; do
  # shellcheck disable=SC2086
  (cd "$tmp" && "$bench" $small --sweep=16,32 --sweep-csv sweep.csv \
    --sweep-png "$png" >sweep.out 2>&1) ||
    { cat "$tmp/sweep.out"; fail "the sweep failed for chart '$png'"; }
  [ ! -e "$tmp/INJECTED" ] || fail "chart name '$png' ran a command"
  if grep -q "gnuplot not found" "$tmp/sweep.out"; then
    echo "ok: sweep with chart '$png' (gnuplot not installed: no chart drawn)"
  else
    [ -s "$tmp/$png" ] || { cat "$tmp/sweep.out"; fail "no chart '$png'"; }
    [ -s "$tmp/$png.gp" ] || fail "no chart script '$png.gp'"
    echo "ok: sweep with chart '$png': drawn, and no command ran"
  fi
done

# Repeated runs, each in a process of its own, in rotated order; the
# tight-limit table; the staged policy.
# shellcheck disable=SC2086
out=$("$bench" --quick --no-progress --splits 8 --policies unlimited,staged,oracle --isolate --repeat 2 2>&1) ||
  { echo "$out"; fail "--isolate --repeat 2 failed"; }
case $out in *"2 runs of each policy, each in a process of its own"*) ;;
  *) echo "$out"; fail "--isolate --repeat: no repeat line" ;; esac
echo "$out" | grep -q '^staged ' || { echo "$out"; fail "no staged row"; }
echo "ok: --isolate --repeat 2 with staged"
# shellcheck disable=SC2086
(cd "$tmp" && "$bench" $small --policies unlimited,staged --tight \
  --sweep-csv tight.csv --sweep-png tight.png >tight.out 2>&1) ||
  { cat "$tmp/tight.out"; fail "--tight failed"; }
[ "$(grep -c '^[0-9]' "$tmp/tight.csv")" = 3 ] ||
  { cat "$tmp/tight.csv"; fail "--tight: not 3 budgets"; }
echo "ok: --tight writes 3 budgets"
# The callgrind mode lists every case (peers not installed are named).
out=$("$bench" micro --callgrind --callgrind-iters 10 2>&1) ||
  { echo "$out"; fail "micro --callgrind failed"; }
for c in hmb_cg_malloc_64 hmb_cg_memalign_4k hmb_cg_hmb_64k hmb_cg_hmb_ptr_64 \
  hmb_cg_hmb_glibc_64 hmb_cg_jemalloc_64 hmb_cg_hmb_tcmalloc_64k; do
  echo "$out" | grep -q " $c " || { echo "$out"; fail "callgrind: no $c"; }
done
echo "ok: micro --callgrind names every case"

# The JSON records build, host, date and load.
# shellcheck disable=SC2086
"$bench" $small --json "$tmp/run.json" >/dev/null 2>&1 || fail "the quick run failed"
for key in '"build"' '"type"' '"compiler"' '"git_commit"' '"host"' '"name"' \
  '"loadavg_1min"' '"load_warning"' '"date"' '"results"'; do
  grep -q "$key" "$tmp/run.json" || fail "run.json has no $key"
done
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/run.json" ||
    fail "run.json is not valid JSON"
fi
echo "ok: JSON with build, host, date and load"
echo "OK: bench CLI"
