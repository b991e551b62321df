#!/bin/bash
# bench/profile/cpu_per_hop.sh: one chain run (`--only reconciliation --samples 20 --hops 3000`); over WIN (10) s of
# the chain, the CPU time per hop of the PostgreSQL processes, of the bench process (the silo and the harness) and of
# its reaped children (the job processes), and of all cores together, and the machine's context switches per hop,
# from /proc; hops counted as the chain's job runs in the database, two per hop. Run it from the repository root (or
# set DIR), with the bench built (dotnet build -c Release bench), no other PostgreSQL listening on loopback and no
# other bench running.
set -u
cd ${DIR:-.}
dotnet run -c Release --no-build --project bench -- --only reconciliation --samples 20 --hops ${HOPS:-3000} --repeat 1 > ${TMPDIR:-/tmp}/cpu_per_hop.out 2>&1 &
for i in $(seq 1 120); do
  port=$(ps aux | grep '[b]in/postgres' | grep -o '\-p [0-9]*' | head -1 | awk '{print $2}'); [ -n "$port" ] && break; sleep 1; done
PSQL="psql -h 127.0.0.1 -p $port -U postgres -X -q -At"
for i in $(seq 1 240); do db=$($PSQL -d postgres -c "select datname from pg_database where datname like 'recon%'" 2>/dev/null); [ -n "$db" ] && break; sleep 1; done
runs() { $PSQL -d $db -c "select count(*) from job_runs where job_label = 'hop'"; }
for i in $(seq 1 600); do n=$(runs 2>/dev/null); [ "${n:-0}" -gt 20 ] && break; sleep 0.5; done
sleep 2
snap() { local pg=0 dn=0 ch=0
  for p in /proc/[0-9]*; do comm=$(cat $p/comm 2>/dev/null) || continue; read -r -a f < $p/stat 2>/dev/null || continue
    case "$comm" in postgres) pg=$((pg+f[13]+f[14]));; dotnet|DataBuild.Benc*) dn=$((dn+f[13]+f[14])); ch=$((ch+f[15]+f[16]));; esac; done
  read -r -a s < /proc/stat; echo "$pg $dn $ch $(( s[1]+s[2]+s[3]+s[6]+s[7] )) $(awk "/^ctxt/ {print \$2}" /proc/stat)"; }
c1=$(runs); read a1 b1 e1 u1 x1 < <(snap); t1=$(date +%s.%N)
sleep ${WIN:-10}
c2=$(runs); read a2 b2 e2 u2 x2 < <(snap); t2=$(date +%s.%N)
hops=$(( (c2-c1)/2 ))
echo "hops/s $(echo "$hops / ($t2-$t1)" | bc -l | cut -c1-6)  CPU µs per hop: postgres $(( (a2-a1)*10000/hops ))  silo+harness $(( (b2-b1)*10000/hops ))  jobs $(( (e2-e1)*10000/hops ))  all cores $(( (u2-u1)*10000/hops ))  switches per hop $(( (x2-x1)/hops ))"
kill %1 2>/dev/null; sleep 1; pkill -f DataBuild.Bench; wait 2>/dev/null  # dotnet run does not pass the signal on to the bench
