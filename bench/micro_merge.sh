#!/usr/bin/env bash
# Merge the alloc rows of several `hmb_bench micro --csv` files into one
# markdown table: for each size, the median over the files of each impl's
# ratio to malloc (each file's ratio is already the median of its rounds,
# taken against malloc in the same round), and malloc's median ns/op.
# Files are grouped by a label, so that runs against two builds of the
# library (bench/build_against.sh) can stand side by side.
#
# Usage: bench/micro_merge.sh TOUCH THREADS SHARED IMPLS LABEL=FILE[,FILE...]...
#   TOUCH    page or fill
#   THREADS  thread count of the layout (1, 2)
#   SHARED   1: the threads share one runner; 0: a runner each
#   IMPLS    comma list of impl names (the CSV's impl column), e.g.
#            hmb,hmb-ptr,jemalloc; NAME@LABEL shows NAME for that label only
# e.g. bench/micro_merge.sh fill 1 0 hmb,hmb-ptr 0.1=b1.csv,b2.csv 0.2=a1.csv,a2.csv
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
touch=$1 threads=$2 shared=$3 impls=$4
shift 4
args=()
labels=()
for spec in "$@"; do
  label=${spec%%=*}
  labels+=("$label")
  IFS=, read -r -a files <<<"${spec#*=}"
  for f in "${files[@]}"; do args+=("$label" "$f"); done
done
{
  i=0
  while [ $i -lt ${#args[@]} ]; do
    label=${args[$i]} f=${args[$((i + 1))]}
    # group,impl,touch,threads,shared_runner,size_bytes,rounds,ns_per_op,ratio_vs_malloc,...,note
    awk -F, -v L="$label" -v T="$touch" -v N="$threads" -v S="$shared" '
      $1 == "alloc" && $3 == T && $4 == N && $5 == S {
        note = $15
        print L, $2, $6, $8, $9, (note == "" ? "-" : "x")
      }' "$f"
    i=$((i + 2))
  done
} | awk -v impls="$impls" -v labels="${labels[*]}" '
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
      if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function size_name(b) {
    if (b >= 1048576) return (b / 1048576) " MiB"
    if (b >= 1024) return (b / 1024) " KiB"
    return b " B"
  }
  {
    label = $1; impl = $2; size = $3
    if ($6 == "x") { na[label, impl, size] = 1; next }
    sizes[size] = 1
    if (impl == "malloc") ns[label, size] = ns[label, size] " " $4
    r[label, impl, size] = r[label, impl, size] " " $5
    cnt[label, impl, size]++
  }
  END {
    nl = split(labels, L, " ")
    ni = split(impls, I, ",")
    hdr = "| size |"; sep = "|---|"
    for (l = 1; l <= nl; l++) { hdr = hdr " malloc ns (" L[l] ") |"; sep = sep "---:|" }
    for (i = 1; i <= ni; i++) {
      only[i] = ""
      if (index(I[i], "@")) { only[i] = substr(I[i], index(I[i], "@") + 1); I[i] = substr(I[i], 1, index(I[i], "@") - 1) }
      for (l = 1; l <= nl; l++) {
        if (only[i] != "" && only[i] != L[l]) continue
        hdr = hdr " " I[i] (nl > 1 ? " " L[l] : "") " |"; sep = sep "---:|"
      }
    }
    print hdr; print sep
    n = 0
    for (s in sizes) S[++n] = s + 0
    for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++)
      if (S[b] < S[a]) { t = S[a]; S[a] = S[b]; S[b] = t }
    for (a = 1; a <= n; a++) {
      s = S[a]; line = "| " size_name(s) " |"
      for (l = 1; l <= nl; l++)
        line = line ((L[l], s) in ns ? sprintf(" %.1f |", median(ns[L[l], s])) : " - |")
      for (i = 1; i <= ni; i++) for (l = 1; l <= nl; l++) {
        if (only[i] != "" && only[i] != L[l]) continue
        k = L[l] SUBSEP I[i] SUBSEP s
        if (k in r) line = line sprintf(" %.2fx |", median(r[k]))
        else line = line ((k in na) ? " n/a |" : " - |")
      }
      print line
    }
  }'
