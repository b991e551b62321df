#!/bin/bash
# bench/profile/cpu_per_want.sh [VAR=value ...]: one ingest run (`--only ingest --repeat 1 --seconds 30`); over 15 s of its
# measured window, the CPU time per want of the PostgreSQL processes and of the bench process (the silo and its HTTP
# clients), from /proc, and the wants created in the window, counted in the database. On two saturated cores CPU per
# want moves far less between runs than the throughput, and pg_stat_statements' times, which include the time a
# backend waits for a core, do. Arguments are environment assignments for the run. Run it from the repository root,
# with the bench built (dotnet build -c Release bench) and no other PostgreSQL listening on loopback.
set -u
env "$@" dotnet run -c Release --no-build --project bench -- --only ingest --repeat 1 --seconds ${SECS:-30} > ${TMPDIR:-/tmp}/cpu_per_want.out 2>&1 &
for i in $(seq 1 120); do
  port=$(ps aux | grep '[b]in/postgres' | grep -o '\-p [0-9]*' | head -1 | awk '{print $2}'); [ -n "$port" ] && break; sleep 1; done
PSQL="psql -h 127.0.0.1 -p $port -U postgres -X -q -At"
for i in $(seq 1 240); do db=$($PSQL -d postgres -c "select datname from pg_database where datname like 'ingest%'" 2>/dev/null); [ -n "$db" ] && break; sleep 1; done
for i in $(seq 1 300); do last=$($PSQL -d $db -c "select partitions from wants order by seq desc limit 1" 2>/dev/null); [[ "$last" == *'ext/pg0/'* ]] && break; sleep 0.5; done
sleep 3
snap() { local pg=0 dn=0
  for p in /proc/[0-9]*; do comm=$(cat $p/comm 2>/dev/null) || continue; read -r -a f < $p/stat 2>/dev/null || continue
    t=$(( ${f[13]} + ${f[14]} )); case "$comm" in postgres) pg=$((pg+t));; dotnet|DataBuild.Benc*) dn=$((dn+t));; esac; done; echo "$pg $dn"; }
c1=$($PSQL -d $db -c "select count(*) from wants"); read a1 b1 < <(snap); t1=$(date +%s.%N)
sleep ${WIN:-15}
c2=$($PSQL -d $db -c "select count(*) from wants"); read a2 b2 < <(snap); t2=$(date +%s.%N)
n=$((c2-c1))
echo "[$*] wants/s $(echo "$n / ($t2-$t1)" | bc)  pg µs/want $(( (a2-a1)*10000/n ))  silo µs/want $(( (b2-b1)*10000/n ))"
wait; grep ingest_wants_postgres ${TMPDIR:-/tmp}/cpu_per_want.out | tr -s ' '
