# shellcheck shell=bash
# Release download and verification from a local mirror (the cached etcd mirror served over
# HTTP on loopback by python's http.server, with sendfile(2) for the body so the server is
# not what limits the rate; the fleet's plain http.server does ~250 MB/s): `etcdadm download`
# (fetches SHA256SUMS, streams the archive to its cache while hashing it, verifies) against
# the baseline `curl -s URL | sha256sum` of the same archive, and, for context,
# `curl -s URL | tee FILE | sha256sum` (the same work etcdadm does: also writes the file).
# Runs alternate (hyperfine, BENCH_RUNS each, default 30); the cache is emptied before every
# etcdadm run. Target (from the issue): etcdadm's throughput >= 0.9 of the baseline's.

bench_main() {
  local runs=${BENCH_RUNS:-30} port=28202 dir mirror=${ETCDADM_TEST_CACHE:-/var/tmp/etcdadm-test-cache}/mirror
  local v=$ETCD_VERSION name size url json pid
  scripts/build-etcd-mirror.sh "$mirror" "$v" >&2 || return 1
  name=etcd-v$v-linux-amd64.tar.gz
  size=$(stat -c %s "$mirror/v$v/$name")
  dir=$(mktemp -d /var/tmp/etcdadm-bench-download.XXXXXX) || return 1
  cat >"$dir/server.py" <<'PY'
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, source, outputfile):
        outputfile.flush()
        self.connection.sendfile(source)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), functools.partial(H, directory=sys.argv[1])).serve_forever()
PY
  python3 "$dir/server.py" "$mirror" "$port" </dev/null >"$dir/http.log" 2>&1 &
  pid=$!
  # shellcheck disable=SC2064 # expand now
  trap "kill $pid 2>/dev/null; rm -rf '$dir'" EXIT
  fleet_retry 10 bash -c ": <>/dev/tcp/127.0.0.1/$port" 2>/dev/null || { fleet__fail "http server did not start"; return 1; }
  url=http://127.0.0.1:$port/v$v/$name
  printf 'release-url: http://127.0.0.1:%s\nversion: %s\ncache-dir: %s/cache\n' "$port" "$v" "$dir" >"$dir/config.yaml"
  "$ETCDADM_BIN" download --config "$dir/config.yaml" >/dev/null 2>&1 ||
    { "$ETCDADM_BIN" download --config "$dir/config.yaml"; fleet__fail "etcdadm download failed"; return 1; }
  json=$dir/hyperfine.json
  hyperfine --warmup 3 --runs "$runs" --export-json "$json" \
    -n etcdadm --prepare "rm -rf $dir/cache" "$ETCDADM_BIN download --config $dir/config.yaml" \
    -n baseline --prepare true "curl -s $url | sha256sum" \
    -n tee --prepare "rm -f $dir/copy" "curl -s $url | tee $dir/copy | sha256sum" >/dev/null 2>&1 ||
    { fleet__fail "hyperfine failed"; return 1; }
  echo
  echo "## download: $name ($size bytes) from http://127.0.0.1 (python http.server + sendfile), $runs runs each"
  bench_load
  echo
  python3 - "$json" "$size" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
size = int(sys.argv[2])
def mbs(t): return size / t / 1e6
e, b, t = r["etcdadm"], r["baseline"], r["tee"]
print("| command | time, median (min-max) | throughput at the median | vs baseline |")
print("|---|---|---|---|")
for label, x in (("`etcdadm download` (SHA256SUMS + archive, hashed while written)", e),
                 ("baseline: `curl -s URL \\| sha256sum`", b),
                 ("context: `curl -s URL \\| tee FILE \\| sha256sum`", t)):
    print("| %s | %.1f ms (%.1f-%.1f) | %.0f MB/s | %.2f |" % (label, x["median"] * 1e3, x["min"] * 1e3, x["max"] * 1e3,
          mbs(x["median"]), b["median"] / x["median"]))
PY
  echo
  echo "'vs baseline' is throughput relative to the baseline (baseline time / this time): >= 0.9 is the target."
  echo "hyperfine runs each command through /bin/sh (about 1 ms, the same for all three)."
}
