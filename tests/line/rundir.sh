#!/usr/bin/env bash
# Run directories (simulator.workdir, keep, templates, outputs): a user's code that reads
# an input deck rendered from a template and writes out.dat in its working directory, two
# runs at a time. Each point stores its own out.dat (its sample id, its input, the
# SPECLINE_* environment, its cwd); a run without out.dat fails with the reason; with
# keep: failed only the failed runs' directories remain, with the default none does; a
# workdir that could reach the user's files is refused by `config check`.
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/camp/tmpl"
cat >"$T/camp/code.sh" <<'SH'
#!/bin/sh
# a file-writing code: reads deck.in (rendered from deck.in.tmpl) in its cwd
read -r line
mode=$(sed -n 's/^mode = //p' deck.in)
id=$(sed -n 's/^id = //p' deck.in)
t0=$(date +%s.%N)
sleep 0.4
case "$mode" in
  4.5) echo '{"final":{"y":1}}'; exit 0 ;;   # forgets out.dat: the point fails
  5.5) echo "boom" >&2; exit 3 ;;            # a failed run
esac
printf 'sample=%s env_id=%s dir=%s campaign=%s pwd=%s mode=%s static=%s\n' "$id" "$SPECLINE_SAMPLE_ID" \
  "$SPECLINE_RUN_DIR" "$SPECLINE_CAMPAIGN" "$(pwd)" "$mode" "$(cat static.txt)" >out.dat
echo "$t0 $(date +%s.%N)" >times.dat
echo "{\"final\":{\"y\":$mode}}"
SH
chmod +x "$T/camp/code.sh"
printf 'mode = {{ mode }}\nid = {{sample_id}}\nliteral = \\{{x}}\n' >"$T/camp/tmpl/deck.in.tmpl"
echo "copied" >"$T/camp/tmpl/static.txt"
config() { # config NAME KEEP
  cat <<YAML
experiment: $1
inputs:
  - {name: mode, type: float, value_range: [0.0, 6.0]}
outputs:
  - {name: y, type: float}
simulator:
  command: ["./code.sh"]
  max_steps: 5
  workdir: runs-$1
  $2
  templates: [tmpl]
  outputs: [{file: out.dat}, {file: times.dat, name: times, optional: true}]
policy: {initial: grid, initial_n: 6, acquisition: none, oversubscribe: 1, seed: 1}
budget: {max_sims: 6, wall_s: 200, max_failed: 6}
workers: {simulate_workers: 1, slots: 2}
store: sqlite:store.db
YAML
}
A="rundir-a-$$"
B="rundir-b-$$"
config "$A" "keep: failed" >"$T/camp/a.yaml"
config "$B" "" >"$T/camp/b.yaml"
cd /tmp
check "config check accepts the run directory keys" "$BIN/specline" config check "$T/camp/a.yaml"
timeout 200 "$BIN/specline" run "$T/camp/a.yaml" --no-progress >"$T/run-a.log" 2>&1 || rc=$?
check "specline run (keep: failed) exits 0" eq "$rc" 0
"$BIN/specline" results "$T/camp/a.yaml" --json >"$T/a.json"
# one line per point: sample_id status mode out.dat-content error
python3 - "$T/a.json" >"$T/a.txt" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1])):
    f = (p.get("files") or {}).get("out.dat", "-").strip()
    print("|".join([p["sample_id"], p["status"], "%g" % p["inputs"]["mode"], f, p.get("error") or "-"]))
PY
cat "$T/a.txt"
check "6 points stored" eq "$(wc -l <"$T/a.txt")" 6
check "4 complete, 2 failed" eq "$(cut -d'|' -f2 "$T/a.txt" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')" "complete:4 failed:2 "
own() { # every complete point's out.dat names its own sample, input, run dir, cwd and campaign
  local bad=0 id st mode f err
  while IFS='|' read -r id st mode f err; do
    [ "$st" = complete ] || continue
    dir="$T/camp/runs-$A/$id"
    case "$f" in
      "sample=$id env_id=$id dir=$dir campaign=$A pwd=$dir mode=$mode static=copied") ;;
      *) echo "  $id: out.dat is '$f'"; bad=1 ;;
    esac
  done <"$T/a.txt"
  return $bad
}
check "each complete point stores its own out.dat (id, template, env, cwd)" own
overlap() { # two complete runs were running at the same time (slots: 2)
  python3 - "$T/a.json" <<'PY'
import json, sys
t = [tuple(map(float, p["files"]["times"].split())) for p in json.load(open(sys.argv[1])) if "times" in p.get("files", {})]
n = sum(1 for i in range(len(t)) for j in range(i + 1, len(t)) if t[i][0] < t[j][1] and t[j][0] < t[i][1])
print("  %d runs timed, %d overlapping pairs" % (len(t), n))
sys.exit(0 if len(t) == 4 and n >= 1 else 1)
PY
}
check "runs overlapped in time (two at once, each in its own directory)" overlap
check "4 distinct out.dat contents" eq "$(grep '|complete|' "$T/a.txt" | cut -d'|' -f4 | sort -u | wc -l)" 4
check "a run without its out.dat fails with the reason" \
  grep -q "|failed|4.5|-|output file '$T/camp/runs-$A/[^/]*/out.dat': No such file" "$T/a.txt"
check "the failed run keeps its stderr" grep -q '|failed|5.5|.*boom' "$T/a.txt"
failed_ids=$(grep '|failed|' "$T/a.txt" | cut -d'|' -f1 | sort | tr '\n' ' ')
check "keep: failed leaves exactly the failed runs' directories" \
  eq "$(ls "$T/camp/runs-$A" | sort | tr '\n' ' ')" "$failed_ids"
one=$(grep '|failed|4.5|' "$T/a.txt" | cut -d'|' -f1)
check "the template was rendered in a kept directory ({{x}} escaped)" \
  eq "$(cat "$T/camp/runs-$A/$one/deck.in")" "$(printf 'mode = 4.5\nid = %s\nliteral = {{x}}' "$one")"
check "run directories are 0755" eq "$(stat -c %a "$T/camp/runs-$A/$one")" 755
# the same samples again (same campaign, another store): the kept directories are taken, so
# the new runs get <id>.1 and never touch them
echo "mine" >"$T/camp/runs-$A/$one/marker"
sed 's|store: sqlite:store.db|store: sqlite:store2.db|' "$T/camp/a.yaml" >"$T/camp/a2.yaml"
rc=0
timeout 200 "$BIN/specline" run "$T/camp/a2.yaml" --no-progress >"$T/run-a2.log" 2>&1 || rc=$?
check "the same samples again: specline run exits 0" eq "$rc" 0
check "a taken directory name gets a .1 suffix (the failed runs kept twice)" \
  eq "$(ls "$T/camp/runs-$A" | sort | tr '\n' ' ')" "$(for i in $failed_ids; do printf '%s %s.1 ' "$i" "$i"; done)"
check "the earlier directory is untouched" eq "$(cat "$T/camp/runs-$A/$one/marker" "$T/camp/runs-$A/$one/deck.in" | head -2 | tr '\n' ' ')" "mine mode = 4.5 "
check "the new run's error names its own directory" test "$(sqlite3 "$T/camp/store2.db" \
  "select count(*) from \"$A\" where error like 'output file ''$T/camp/runs-$A/$one.1/out.dat''%'")" -eq 1
rc=0
timeout 200 "$BIN/specline" run "$T/camp/b.yaml" --no-progress >"$T/run-b.log" 2>&1 || rc=$?
check "specline run (default keep) exits 0" eq "$rc" 0
check "6 points stored (default keep)" eq "$(sqlite3 "$T/camp/store.db" "select count(*) from \"$B\"")" 6
check "the default removes every run directory" wait_for 10 test -z "$(ls -A "$T/camp/runs-$B")"
# persistent: one process serves many runs from the runs directory; each run's directory
# (templates rendered, out.dat read back) comes as `run_dir` on its input line
cat >"$T/camp/warm.py" <<'PY'
import json, os, sys
for line in sys.stdin:
    req = json.loads(line)
    if "inputs" not in req:
        continue  # a terminate control line between runs
    d = req["run_dir"]
    mode = [l.split(" = ")[1].strip() for l in open(os.path.join(d, "deck.in")) if l.startswith("mode = ")][0]
    with open(os.path.join(d, "out.dat"), "w") as f:
        f.write("sample=%s deck_mode=%s cwd=%s env_dir=%s pid=%d\n" % (req["sample_id"], mode, os.getcwd(),
                os.environ.get("SPECLINE_RUN_DIR", "-"), os.getpid()))
    print(json.dumps({"final": {"y": req["inputs"]["mode"]}}), flush=True)
PY
P="rundir-p-$$"
config "$P" "persistent: true" | sed 's|command: \["./code.sh"\]|command: ["python3", "warm.py"]|' >"$T/camp/p.yaml"
rc=0
timeout 200 "$BIN/specline" run "$T/camp/p.yaml" --no-progress >"$T/run-p.log" 2>&1 || rc=$?
check "specline run (persistent) exits 0" eq "$rc" 0
"$BIN/specline" results "$T/camp/p.yaml" --json >"$T/p.json"
python3 - "$T/p.json" "$T/camp/runs-$P" >"$T/p.txt" <<'PY'
import json, sys
pts, root = json.load(open(sys.argv[1])), sys.argv[2]
pids = set()
for p in pts:
    f = p.get("files", {}).get("out.dat", "")
    want = "sample=%s deck_mode=%g cwd=%s env_dir=- " % (p["sample_id"], p["inputs"]["mode"], root)
    print("ok" if p["status"] == "complete" and f.startswith(want) else "bad %s: %r" % (p["sample_id"], f))
    pids.add(f.rsplit("pid=", 1)[-1].strip())
print("points %d processes %d" % (len(pts), len(pids)))
PY
cat "$T/p.txt"
check "persistent: every run wrote its own out.dat into its run_dir" eq "$(grep -c '^ok$' "$T/p.txt")" 6
check "persistent: processes were reused (<= 2 for 6 runs)" grep -qE '^points 6 processes [12]$' "$T/p.txt"
check "persistent: run directories removed" wait_for 10 test -z "$(ls -A "$T/camp/runs-$P")"
# a run directory that cannot be made fails the run with the reason, and the campaign ends loudly
F="rundir-f-$$"
echo "not a directory" >"$T/camp/blocked"
config "$F" "" | sed "s|workdir: runs-$F|workdir: blocked/runs|" >"$T/camp/f.yaml"
rc=0
timeout 200 "$BIN/specline" run "$T/camp/f.yaml" --no-progress >"$T/run-f.log" 2>&1 || rc=$?
check "specline run exits non-zero when no run directory can be made" test "$rc" -ne 0
check "the failed points say why" test "$(sqlite3 "$T/camp/store.db" "select count(*) from \"$F\" where status='failed' and \
error like 'cannot create runs directory ''$T/camp/blocked/runs'': Not a directory%'")" -ge 1
# hostile or careless workdirs are refused before anything runs
bad() { # bad WORKDIR PATTERN
  sed "s|workdir: runs-$A|workdir: $1|" "$T/camp/a.yaml" >"$T/camp/bad.yaml"
  local out
  out=$("$BIN/specline" config check "$T/camp/bad.yaml" 2>&1) && { echo "  accepted: $1"; return 1; }
  echo "$out" | grep -q "$2" || { echo "  message: $out"; return 1; }
}
check "workdir '../..' refused" bad "../.." "bad.yaml:9:12: field .simulator.workdir.*'\.\.' is not allowed"
check "workdir '.' (the config's directory) refused" bad "." "simulator.workdir.*config's directory or above"
check "workdir '/' refused" bad "/" "simulator.workdir.*root directory"
check "workdir '$T' (above the config) refused" bad "$T" "config's directory or above"
printf 'x = {{nope}}\n' >"$T/camp/tmpl/bad.tmpl"
check "an unknown placeholder is a config error" bad "runs-$A" "simulator.templates\[0\].*bad.tmpl:1:5: unknown placeholder '{{nope}}'"
finish
