# bench/lib.sh - shared by bench/run.sh and the section scripts (bench/*.sh).
# A section reports each result as one line on standard output:
#   ROW|benchmark|veil figure|unit|anchor|anchor figure|ratio|target|met
# ratio is veil/anchor (so above 1 is better for rates, below 1 for costs);
# target is the goal in words ("≥ 1.5×", "≤ 0.33×"); met is yes, no or "-".
# Everything else a section prints is progress for the user (on stderr).

bench_row() { printf 'ROW|%s|%s|%s|%s|%s|%s|%s|%s\n' "$@"; }
bench_note() { printf '%s\n' "$*" >&2; }
bench_now() { date +%s.%N; }
# bench_div A B [DIGITS]: A/B, printed with DIGITS decimals (default 2).
bench_div() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { if (b == 0) print "nan"; else printf "%.*f\n", d, a / b }'; }
# bench_met ge|le A B T: "yes" if A/B >= T (or <= T), computed unrounded
# (a ratio printed as 0.33 may be 0.334, above a third), else "no".
bench_met() {
  awk -v op="$1" -v a="$2" -v b="$3" -v t="$4" \
    'BEGIN { r = b == 0 ? -1 : a / b; ok = b != 0 && (op == "ge" ? r >= t : r <= t); print ok ? "yes" : "no" }'
}
bench_hz() { getconf CLK_TCK; }
