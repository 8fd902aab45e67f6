# Turns `spin -t` output of bootstrap.pml into one readable line per step:
#   machine, step taken (Rust name), where it is now, state file, data dir, etcd, and each
#   cluster's members by address (V voter, L learner, s started; * = has a leader).
BEGIN {
  split("DOWN MEMBER_UP ROUND FORM FORM_START FORM_HEALTHY JOIN JOIN_ADD JOIN_START JOIN_PROMOTE JOIN_HEALTHY REMOVE READY GONE UNBORN - - SETTLE", PC, " ")
  split("reboot MEMBER_UP ROUND FORM FORM_START FORM_HEALTHY JOIN JOIN_ADD JOIN_START JOIN_PROMOTE JOIN_HEALTHY REMOVE READY GONE UNBORN crash etcd-restart SETTLE", STEP, " ")
  split("none Init/Installing Join/Installing Join/Learner Member", SF, " ")
  split("Wait Form Join RemoveStale", DEC, " ")
}
function mem(f) { f = f % 8; return f == 0 ? "-" : ((f % 2 ? "V" : "") (int(f / 2) % 2 ? "L" : "") (int(f / 4) % 2 ? "s" : "")) }
function set(mask,   s, i) { s = ""; for (i = 0; i < 8; i++) if (int(mask / 2 ^ i) % 2) s = s (s == "" ? "" : ",") "m" i; return "{" s "}" }
/START OF CYCLE/ { print "   ---- from here the run repeats forever ----"; next }
/assertion violated/ { sub(/^ */, ""); print "   !! " $0; next }
{
  gsub(/[ \t]+/, " "); sub(/^ /, "")
  if ($0 ~ /^world: /) { print "   " $0; next }
  if ($0 ~ /^m[0-9]+ (decide|settle): /) {   # m2 decide: view 7 lost 3 -> 1 7 (cluster 0)
    d = DEC[$8 + 1]; arg = ""; cl = $11; sub(/\)/, "", cl)
    if (d == "Form") arg = " " set($9)
    if (d == "Join") arg = " c" cl
    if (d == "RemoveStale") arg = " (member at address " $9 " of c" cl ")"
    print "   " $1 ($2 == "settle:" ? " SETTLE" : " ROUND") ": discovers " set($4) (($6 + 0) ? ", probes of " set($6) " lost" : "") "; decide() = " d arg
    next
  }
  if ($0 ~ /^m[0-9]+ [0-9]+ pc=/) {  # m2 4 pc=4 sf=1 data=0 en=0 etcd=0 | c1(led=0): 1 1 1 c2(led=0): 0 0 0
    split($3, a, "="); split($4, b, "="); split($5, c, "="); split($7, e, "=")
    line = sprintf("   %-3s %-13s -> %-13s state=%-17s data=%-3s etcd=%-3s |", $1, STEP[$2 + 1], PC[a[2] + 1], SF[b[2] + 1], c[2] ? "c" c[2] : "-", e[2] ? "on" : "off")
    for (i = 9; i <= NF; i++) {
      if ($i ~ /^c[0-9]\(led=/) line = line " " substr($i, 1, 2) ($i ~ /led=1/ ? "*" : "") ":"
      else line = line " " mem($i)
    }
    print line
  }
}
