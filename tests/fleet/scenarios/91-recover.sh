# shellcheck shell=bash
# Quorum loss: `etcdadm recover`. A 3-member cluster with keys written loses two machines;
# recover on the survivor makes it a writable one-member cluster with every acknowledged
# key and a new cluster id, its old data directory kept aside; two fresh machines join it;
# a destroyed machine booted again with its old data is rejected (cluster ID mismatch).
# recover on a healthy cluster is refused with nothing changed. Then the cluster grows to
# five, one member (m4) is cut off while keys are written, three others die: recover on m4,
# whose data is older, is refused naming m1. m4's etcd restarted serves no clients without
# a quorum: recover on m1 is refused naming it; once it is stopped, recover on m1 proceeds
# (with restore-bump-revision: the revision jumps, the old revisions read as compacted).

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 || return 1
  local out ip1 old_id new_id cut_at old_rev
  ip1=$(fleet_ip 1)

  check "init on m1" ea_out out m1 init
  copy_ca m1 m2 && copy_ca m1 m3
  check "m2 joins" ea_out out m2 join "https://$ip1:2379"
  check "m3 joins" ea_out out m3 join "https://$ip1:2379"
  check "100 keys written and acknowledged through m1" put_keys m1 /a 100
  old_id=$(cluster_id m1)
  check "recover on the healthy cluster is refused naming the quorum; data dir, etcd and cluster id unchanged" refused_healthy m1

  check "m2 and m3 destroyed (SIGKILL to their machines)" destroy m2 m3
  check "recover without --yes and without a terminal is refused, nothing changed" refused_without_yes m1
  check "recover --yes on m1: preflight lists m1 with its applied index and m2, m3 not answering; prints the join command and the old data dir" recover_on m1 "m2 m3"
  check "m1 is a one-member cluster that accepts writes" writable_alone m1
  check "every key acknowledged before the loss reads back on m1" get_keys m1 /a 100
  new_id=$(cluster_id m1)
  check "the cluster id changed ($old_id -> $new_id)" assert_ne "$old_id" "$new_id"
  check "the old data directory is kept aside with its WAL and database" kept_aside m1 1
  check "recover re-run on the recovered one-member cluster changes nothing" already_alone m1

  machines m4 4 m5 5 || return 1
  copy_ca m1 m4 && copy_ca m1 m5
  check "fresh m4 joins the recovered cluster" ea_out out m4 join "https://$ip1:2379"
  check "fresh m5 joins the recovered cluster" ea_out out m5 join "https://$ip1:2379"
  check "three started voters" expect_voters m1 3
  check "m5 serves every key acknowledged before the loss" get_keys m5 /a 100
  check "destroyed m2 booted with its old data: its state names the old cluster id $old_id, m1's etcd rejects its peer requests (cluster ID mismatch: remote $old_id, local $new_id), still 3 voters without m2" old_member_rejected m2 "$old_id" "$new_id"

  machines m6 6 m7 7 || return 1
  copy_ca m1 m6 && copy_ca m1 m7
  check "m6 joins" ea_out out m6 join "https://$ip1:2379"
  check "m7 joins" ea_out out m7 join "https://$ip1:2379"
  check "five started voters" expect_voters m1 5
  cut_at=$(date +%s)
  check "m4 cut off the network" fleet_partition m4
  check "50 keys written and acknowledged through m1 while m4 is cut off" put_keys m1 /b 50
  check "m5, m6, m7 destroyed; m1 has no leader" destroy_until_leaderless m5 m6 m7
  check "m4's peer connections reset inside m4 (ss -K) and etcd saw its streams from m1 lost, so nothing m1 queued before the loss reaches m4" drop_streams m4 m1 "$cut_at"
  check "m4 back on the network; still no leader (2 of 5)" heal_leaderless m4
  check "m4's applied index stays below m1's" lags m4 m1
  check "recover on m1 lists m4 answering with its applied index, then asks (no terminal: refused)" lists_answering m1 m4
  check "recover on m4 (older data) is refused naming m1; data dir, etcd and cluster id unchanged" refused_older m4 m1
  check "etcd on m4 restarted: it serves no clients without a quorum, its peer port answers" restarted_not_serving m4
  check "recover on m1 is refused naming m4, whose etcd runs but serves no clients; data dir, etcd and cluster id unchanged" refused_unreadable m1 m4
  check "etcd on m4 stopped" fleet_exec m4 systemctl stop etcd
  old_rev=$(mod_revision m1 /b/k1)
  check "restore-bump-revision: 1000000 set in m1's config.d" fleet_exec m1 sh -c 'mkdir -p /etc/etcdadm/config.d && echo "restore-bump-revision: 1000000" > /etc/etcdadm/config.d/50-bump.yaml'
  check "recover --yes on m1: preflight lists m4, m5, m6, m7 not answering" recover_on m1 "m4 m5 m6 m7"
  check "the revision jumped by at least 1000000 and /b/k1's old revision $old_rev reads as compacted" bumped m1 /b/k1 "$old_rev"
  check "every key acknowledged before the loss reads back on m1" get_keys m1 /b 50
  check "m1 is a one-member cluster that accepts writes" writable_alone m1
  check "both old data directories are kept aside" kept_aside m1 2
}

assert_ne() { # A B
  [[ -n $1 && -n $2 && $1 != "$2" ]] || fleet__fail "expected two different non-empty values, got '$1' and '$2'"
}

# The cluster id in the header of M's own status answer (hex, as etcdctl prints member ids).
cluster_id() { # M
  ectl "$1" endpoint status -w json | python3 -c 'import json, sys
print("%x" % json.load(sys.stdin)[0]["Status"]["header"]["cluster_id"])'
}

# Writes N keys PREFIX/k<i> = v<i> through M; each must be acknowledged.
put_keys() { # M PREFIX N
  fleet_exec "$1" sh -c 'i=1; while [ $i -le '"$3"' ]; do /opt/bin/etcdctl.sh put '"$2"'/k$i v$i >/dev/null || exit 1; i=$((i+1)); done'
}

# Every key PREFIX/k<i> reads back as v<i> through M (a serializable read answered by M).
get_keys() { # M PREFIX N
  local got want
  got=$(ectl "$1" get --prefix "$2/" --consistency=s | paste - - | sort) || return 1
  want=$(for ((i = 1; i <= $3; i++)); do printf '%s/k%d\tv%d\n' "$2" "$i" "$i"; done | sort)
  assert_eq "$want" "$got" "keys under $2/ on $1"
}

# What recover must not change: the data directory's files, etcd's state, the cluster id.
untouched() { # M
  fleet_exec "$1" sh -c 'find /var/lib/etcd -type f | sort; ls -d /var/lib/etcd.recovered-* 2>/dev/null; systemctl is-active etcd'
  cluster_id "$1"
}

refused_healthy() { # M
  local before
  before=$(untouched "$1")
  if ea_out out "$1" recover --yes; then fleet__fail "recover succeeded on a healthy cluster"; return 1; fi
  assert_contains "$out" "3 of the 3 voters answer, a quorum: the cluster is not lost" "refusal" &&
    assert_contains "$out" "nothing was changed" "refusal" &&
    assert_eq "$before" "$(untouched "$1")" "data dir, etcd and cluster id of $1"
}

refused_without_yes() { # M
  local before
  before=$(untouched "$1")
  if ea_out out "$1" recover </dev/null; then fleet__fail "recover ran without --yes"; return 1; fi
  assert_contains "$out" "stdin is not a terminal: pass --yes; nothing was changed" "refusal" &&
    assert_eq "$before" "$(untouched "$1")" "data dir, etcd and cluster id of $1"
}

destroy() { # M...
  local m
  for m; do fleet_kill "$m" || return 1; done
}

# Runs recover --yes on M; DEAD are the members that must be listed as not answering,
# ALIVE those listed as answering with their applied index.
recover_on() { # M DEAD [ALIVE]
  local d
  ea_out out "$1" recover --yes || return 1
  assert_contains "$out" "$1 holds the most recent data of the survivors" "choice" &&
    assert_contains "$out" "the old data directory is kept at /var/lib/etcd.recovered-" "old data dir" &&
    assert_contains "$out" "etcdadm join https://$(fleet_ip "${1#m}"):2379" "join command" || return 1
  for d in $2; do
    echo "$out" | grep_all -E "^$d +voter +https://[0-9.]+:2379 +no " || fleet__fail "$d not listed as not answering" || return 1
  done
  for d in ${3:-}; do
    echo "$out" | grep_all -E "^$d +voter +https://$(fleet_ip "${d#m}"):2379 +yes +[0-9]+$" || fleet__fail "$d not listed as answering" || return 1
  done
  echo "$out" | grep_all -E "^$1 +voter +https://127.0.0.1:2379 +yes +[0-9]+  \(this machine\)" || fleet__fail "$1 not listed with its applied index"
}

writable_alone() { # M
  assert_eq 1 "$(members "$1" | wc -l)" "members of the recovered cluster" &&
    ectl "$1" put /after/recover yes >/dev/null &&
    assert_eq yes "$(ectl "$1" get /after/recover --print-value-only)" "a key written after recover"
}

kept_aside() { # M COUNT
  local dirs
  dirs=$(fleet_exec "$1" sh -c 'ls -d /var/lib/etcd.recovered-*') || return 1
  assert_eq "$2" "$(echo "$dirs" | wc -l)" "old data directories: $dirs" &&
    fleet_exec "$1" sh -c 'for d in /var/lib/etcd.recovered-*; do test -s $d/member/snap/db && ls $d/member/wal/*.wal >/dev/null || exit 1; done'
}

already_alone() { # M
  local before
  before=$(untouched "$1")
  ea_out out "$1" recover --yes || return 1
  assert_contains "$out" "alone in a healthy one-member cluster; nothing to recover" "re-run" &&
    assert_eq "$before" "$(untouched "$1")" "data dir, etcd and cluster id of $1"
}

expect_voters() { # M N
  assert_eq "$2" "$(started_voters "$1")" "started voters" || { members "$1" >&2; return 1; }
  assert_eq 0 "$(members "$1" | grep -vc ', started, .*, false$')" "unstarted or learner members"
}

# Boots destroyed M again with its old data: its etcd waits for a quorum of the old cluster
# (the unit stays activating, so multi-user.target is not waited for) and talks to m1.
old_member_rejected() { # M OLD_ID NEW_ID
  local recorded
  recorded=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["cluster-id"])' "$(fleet_root "$1")/etc/etcdadm/state.json") || return 1
  assert_eq "$2" "$recorded" "cluster id recorded on $1" || return 1
  (
    # shellcheck disable=SC2317 # called by fleet_start
    fleet_wait() { fleet_retry 60 fleet__in "$1" sh -c 'systemctl is-active etcd | grep -Eq "^(activating|active)$"'; }
    fleet_start "$1"
  ) || return 1
  fleet_retry 60 sh -c "journalctl -D '$(fleet_root m1)/var/log/journal' --no-pager -u etcd | grep 'request cluster ID mismatch' | grep '\"local-member-cluster-id\":\"$3\"' | grep -q '\"remote-peer-cluster-id\":\"$2\"'" || return 1
  expect_voters m1 3 || return 1
  ! members m1 | grep_all ", $1, " || fleet__fail "$1 is in the new cluster" || return 1
  fleet_kill "$1"
}

leader_of() { # M: the leader M's status reports (0 for none), or nothing when it does not answer
  ectl "$1" endpoint status -w json 2>/dev/null | python3 -c 'import json, sys
print(json.load(sys.stdin)[0]["Status"].get("leader", 0))'
}

destroy_until_leaderless() { # M...
  destroy "$@" || return 1
  local deadline=$((SECONDS + 30))
  until [[ $(leader_of m1) == 0 ]]; do
    ((SECONDS < deadline)) || fleet__fail "m1 still reports leader $(leader_of m1)" || return 1
    sleep 0.5
  done
}

member_id() { # M: its member id (hex), from its own status answer
  ectl "$1" endpoint status -w json | python3 -c 'import json, sys
print("%x" % json.load(sys.stdin)[0]["Status"]["header"]["member_id"])'
}

applied() { # M: its applied raft index
  ectl "$1" endpoint status -w json | python3 -c 'import json, sys
print(json.load(sys.stdin)[0]["Status"]["raftAppliedIndex"])'
}

# A silently cut member's TCP connections survive the cut: once it heals, they deliver the
# appends the leader queued before the loss, and the member catches up. Resetting them
# inside M (its RSTs are lost on the cut, so the peer's retransmissions meet a closed
# socket) drops that queue. Waits until M's etcd logged both streams from PEER lost.
drop_streams() { # M PEER SINCE
  local id
  id=$(member_id "$2") || return 1
  fleet_exec "$1" ss -K -tn state established '( sport = :2380 or dport = :2380 )' >/dev/null || return 1
  fleet_retry 60 sh -c "[ \$(journalctl -D '$(fleet_root "$1")/var/log/journal' --no-pager -u etcd --since @$3 | grep 'lost TCP streaming connection with remote peer' | grep -c '\"remote-peer-id\":\"$id\"') -ge 2 ]"
}

lags() { # M NEWER
  local a b
  a=$(applied "$1") && b=$(applied "$2") || return 1
  ((a < b)) || fleet__fail "$1 applied $a, $2 applied $b"
}

heal_leaderless() { # M
  fleet_heal "$1" || return 1
  sleep 5
  assert_eq 0 "$(leader_of m1)" "leader on m1" && assert_eq 0 "$(leader_of "$1")" "leader on $1"
}

refused_older() { # M NEWER
  local before
  before=$(untouched "$1")
  if ea_out out "$1" recover --yes; then fleet__fail "recover succeeded on the older survivor"; return 1; fi
  assert_contains "$out" "recover refused: $2 (https://$(fleet_ip "${2#m}"):2379) holds more recent data" "refusal" &&
    assert_contains "$out" "run \`etcdadm recover\` on $2 instead; nothing was changed" "refusal" &&
    assert_eq "$before" "$(untouched "$1")" "data dir, etcd and cluster id of $1"
}

lists_answering() { # M OTHER
  if ea_out out "$1" recover </dev/null; then fleet__fail "recover ran without --yes"; return 1; fi
  echo "$out" | grep_all -E "^$2 +voter +https://$(fleet_ip "${2#m}"):2379 +yes +[0-9]+$" || fleet__fail "$2 not listed as answering"
}

restarted_not_serving() { # M
  fleet_exec "$1" systemctl restart --no-block etcd || return 1
  sleep 1
  fleet_retry 30 fleet_exec "$1" sh -c '[ "$(systemctl is-active etcd)" = activating ]' || return 1
  sleep 3
  assert_eq activating "$(fleet_exec "$1" systemctl is-active etcd)" "etcd unit on $1" || return 1
  if ectl "$1" endpoint status >/dev/null 2>&1; then fleet__fail "etcd on $1 serves clients"; return 1; fi
  fleet_exec "$1" bash -c ': </dev/tcp/'"$(fleet_ip "${1#m}")"'/2380'
}

refused_unreadable() { # M RUNNING
  local before
  before=$(untouched "$1")
  if ea_out out "$1" recover --yes; then fleet__fail "recover succeeded"; return 1; fi
  assert_contains "$out" "recover refused: etcd runs on $2 (its peer port answers for this cluster) but serves no clients" "refusal" &&
    assert_contains "$out" "nothing was changed" "refusal" &&
    echo "$out" | grep_all -E "^$2 +voter +https://[0-9.]+:2379 +no +-  \(etcd runs but serves no clients\)" &&
    assert_eq "$before" "$(untouched "$1")" "data dir, etcd and cluster id of $1"
}

mod_revision() { # M KEY: the key's mod_revision, read serializably (no leader needed)
  ectl "$1" get "$2" -w json --consistency=s | python3 -c 'import json, sys
print(json.load(sys.stdin)["kvs"][0]["mod_revision"])'
}

bumped() { # M KEY OLD_REV
  local rev err
  rev=$(ectl "$1" get "$2" -w json | python3 -c 'import json, sys
print(json.load(sys.stdin)["header"]["revision"])') || return 1
  ((rev >= 1000000 + $3)) || fleet__fail "header revision $rev, expected at least $((1000000 + $3))" || return 1
  if err=$(ectl "$1" get "$2" --rev="$3" 2>&1); then fleet__fail "read at revision $3 succeeded: $err"; return 1; fi
  assert_contains "$err" "compacted" "read at revision $3"
}
